"""``smartplace lorawan``: connect LoRaWAN network servers to the project's broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from smartplace.lorawan.bridge import (
    ChirpstackBridge,
    TtsBridge,
    render_chirpstack_bridge,
    render_tts_bridge,
    write_bridge_file,
)

app = typer.Typer(
    help="Connect The Things Stack or ChirpStack to smartplace.", no_args_is_help=True
)


@app.command()
def bridge(
    output: Annotated[
        Path, typer.Option(help="The mosquitto.conf file to write (0600: it holds the key).")
    ],
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
) -> None:
    """Write the mosquitto bridge connections that bring a network server's uplinks in.

    Include the file from the project's broker configuration (mosquitto's
    include_dir, or append it) and restart the broker.
    """
    if server not in ("tts", "chirpstack"):
        raise typer.BadParameter("use tts or chirpstack", param_hint="--server")
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
    typer.echo(f"wrote {len(parts)} bridge connection(s) to {output}")
