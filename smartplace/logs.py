"""Structured key=value log lines for the services; Rich output stays in the CLI."""

from __future__ import annotations

import logging
from pathlib import Path

FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def configure_logging(level: str = "INFO", file: Path | None = None) -> None:
    handler: logging.Handler = logging.FileHandler(file) if file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO: one line per batch write is noise at this volume.
    logging.getLogger("httpx").setLevel(logging.WARNING)
