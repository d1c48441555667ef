"""``smartplace dashboards build|push``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Grafana dashboards, provisioning and alert rules.", no_args_is_help=True)
console = Console()


@app.command()
def build(
    out: Annotated[Path, typer.Option(help="Where to write them.")] = Path("dashboards"),
    chat: Annotated[
        str,
        typer.Option(
            help="Where chat alerts go, at SMARTPLACE_ALERT_WEBHOOK_URL: teams, slack, or"
            " webhook (Grafana's own JSON, for a receiver of your own)."
        ),
    ] = "teams",
) -> None:
    """Write the dashboards' JSON and Grafana's provisioning files (data source, provider, alerts),
    reading the retention policies SMARTPLACE_INFLUX__RAW/AGG_RETENTION_POLICY name."""
    from smartplace.config import Settings
    from smartplace.dashboards.provisioning import CHATS, write_all

    chosen = next((c for c in CHATS if c == chat), None)
    if chosen is None:
        raise typer.BadParameter(f"{chat!r} is not one of {', '.join(CHATS)}", param_hint="--chat")
    influx = Settings().influx
    policies = (influx.raw_retention_policy, influx.agg_retention_policy)
    written = write_all(out, policies, chosen)
    console.print(f"Wrote {len(written)} files under {out}/.")


@app.command()
def push(
    url: Annotated[str, typer.Option(help="Grafana's address, e.g. http://localhost:3000.")],
    token: Annotated[
        str, typer.Option(envvar="GRAFANA_TOKEN", help="A service account token (Editor).")
    ],
) -> None:
    """Upload every dashboard into the 'smartplace' folder; unchanged ones are left alone."""
    from smartplace.config import Settings
    from smartplace.dashboards.push import push as push_dashboards

    influx = Settings().influx
    policies = (influx.raw_retention_policy, influx.agg_retention_policy)
    report = push_dashboards(url, token, policies=policies)
    if report.created_folder:
        console.print("Created folder smartplace.")
    console.print(
        f"Uploaded {len(report.uploaded)} dashboards; {len(report.unchanged)} already up to date."
    )
