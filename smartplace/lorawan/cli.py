"""``smartplace lorawan``: connect LoRaWAN network servers to the project's broker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from smartplace.config import load_settings
from smartplace.lorawan.backfill import backfill
from smartplace.lorawan.bridge import (
    NOT_UTF8,
    ChirpstackBridge,
    TtsBridge,
    render_chirpstack_bridge,
    render_tts_bridge,
    write_bridge_file,
)
from smartplace.private_files import private_dir
from smartplace.stack.local import BRIDGES_DIR_NAME

app = typer.Typer(
    help="Connect The Things Stack or ChirpStack to smartplace.", no_args_is_help=True
)


@app.command()
def bridge(
    address: Annotated[str, typer.Option(help="host:port of the network server's MQTT server.")],
    api_key_file: Annotated[
        Path, typer.Option(help="File holding the API key (TTS) or password (ChirpStack broker).")
    ],
    application: Annotated[
        list[str],
        typer.Option(help="TTS: app-id@tenant-id; ChirpStack: the application's UUID. Repeatable."),
    ],
    server: Annotated[str, typer.Option(help="tts or chirpstack.")] = "tts",
    username: Annotated[str, typer.Option(help="ChirpStack broker's user name.")] = "",
    ca_file: Annotated[
        Path | None, typer.Option(help="CA of the server's certificate; default: the system's.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="The mosquitto.conf file to write (0600: it holds the key); default: "
            "bridges/{server}-{application}.conf in the local stack's directory."
        ),
    ] = None,
) -> None:
    """Write the mosquitto bridge connections that bring a network server's uplinks in.

    By default into the local stack's bridges/, which 'smartplace up' includes in
    its broker's configuration; for docker compose, write it into
    deploy/mosquitto/bridges/. Restart the broker to use it.
    """
    if server not in ("tts", "chirpstack"):
        raise typer.BadParameter("use tts or chirpstack", param_hint="--server")
    if output is None:
        # Named after the first application, as its connection is, so a run for another
        # application adds a file. The name is checked (rendering below) before anything is written.
        name = application[0].split("@", 1)[0] if server == "tts" else application[0].split("-")[0]
        output = private_dir(load_settings().stack_dir / BRIDGES_DIR_NAME) / f"{server}-{name}.conf"
    parts = []
    for app_id in application:
        if server == "tts":
            parts.append(render_tts_bridge(TtsBridge(address, app_id, api_key_file, ca_file)))
        else:
            parts.append(
                render_chirpstack_bridge(
                    ChirpstackBridge(address, app_id, username, api_key_file, ca_file)
                )
            )
    write_bridge_file("\n".join(parts), output)
    typer.echo(
        f"wrote {len(parts)} bridge connection(s) to {output}; restart the broker to use them "
        "('smartplace up --stop', then 'smartplace up', for the local stack)"
    )


@app.command("backfill")
def backfill_command(
    since: Annotated[
        datetime, typer.Option(help="Fetch uplinks received after this time (ISO 8601, UTC).")
    ],
    server: Annotated[
        str, typer.Option(help="The TTS cluster, e.g. https://eu1.cloud.thethings.network.")
    ],
    application: Annotated[str, typer.Option(help="app-id@tenant-id.")],
    api_key_file: Annotated[
        Path, typer.Option(help="File holding an API key with rights to read stored traffic.")
    ],
) -> None:
    """Fill a gap from TTS's Storage Integration: stored uplinks go through ingest again, and
    the frames it already has are refused there as duplicate_frame."""
    moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    result = backfill(load_settings(), server, application, api_key_file, moment)
    typer.echo(
        f"fetched {result.fetched} stored uplinks, published {result.published} for ingest, "
        f"skipped {result.skipped}"
    )


@app.command()
def webhook(
    secret_file: Annotated[
        Path, typer.Option(help="File holding the shared secret TTS sends in its header.")
    ],
    tenant: Annotated[
        str, typer.Option(help="The TTS tenant (ttn on The Things Network).")
    ] = "ttn",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
) -> None:
    """Receive TTS webhook uplinks (POST /tts/uplink) and answer 2xx only once the broker has them."""
    import uvicorn

    from smartplace.lorawan.webhook import WebhookConfigError, check_tenant, webhook_app
    from smartplace.publisher import gateway_publisher

    settings = load_settings()
    try:
        secret = secret_file.read_text().strip()
    except OSError as exc:
        raise WebhookConfigError(f"secret file {secret_file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise WebhookConfigError(f"secret file {secret_file}: {NOT_UTF8}") from None
    # checked before the broker is reached, so a mistake here is named as itself
    if not secret:
        raise WebhookConfigError(f"secret file {secret_file}: empty")
    check_tenant(tenant)
    with gateway_publisher(settings.mqtt, "webhook") as publisher:
        app_ = webhook_app(publisher, secret, tenant, settings.ingest.max_payload_bytes)
        uvicorn.run(app_, host=host, port=port, log_level="warning")
