"""``smartplace feeds serve``."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="The open data service for the council's portal.", no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65_535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve /datasets, /sites and /catalog.jsonld (OpenAPI at /openapi.json, docs at /docs)."""
    import uvicorn

    from smartplace.config import load_settings
    from smartplace.feeds.app import create_app

    # The app sets Date itself, after Last-Modified (uvicorn's is cached for a second).
    uvicorn.run(
        create_app(load_settings()), host=host, port=port, log_level="info", date_header=False
    )
