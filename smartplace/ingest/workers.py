"""`smartplace ingest` with several workers: this process is worker 0 and starts the others.

Each other worker is the same `smartplace ingest`, told its index; it loads
the same settings. If one dies, the rest are stopped (gracefully, so they
drain) and the exit code says so: whatever supervises smartplace (systemd,
docker) restarts the whole, and each worker's spool and session carry on.
Worker 0 runs here rather than under a separate supervisor, which would
hold a Python process's memory for nothing.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading

from smartplace.config import Settings
from smartplace.ingest.receive.shard import worker_settings
from smartplace.ingest.service import IngestService

log = logging.getLogger(__name__)

POLL_S = 0.5


def run_workers(settings: Settings, log_level: str, stop: threading.Event) -> int:
    """Run ``settings.ingest.workers`` workers until ``stop`` or one of them ends; the exit code."""
    others = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smartplace",
                "ingest",
                "--log-level",
                log_level,
                "--worker",
                str(index),
            ]
        )
        for index in range(1, settings.ingest.workers)
    ]
    log.info("ingest worker 0 started workers 1-%d pids=%s", len(others), [p.pid for p in others])
    failed: list[int] = []

    def watch() -> None:
        while not stop.wait(POLL_S):
            for index, process in enumerate(others, start=1):
                if process.poll() is not None:
                    log.error(
                        "ingest worker %d exited with %s: stopping the others",
                        index,
                        process.returncode,
                    )
                    failed.append(process.returncode or 1)
                    stop.set()
                    return

    threading.Thread(target=watch, name="ingest-workers", daemon=True).start()
    try:
        IngestService(worker_settings(settings, 0)).run(stop)
    finally:
        stop.set()
        for process in others:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # each drains its spool, as on its own
        codes = [process.wait() for process in others]
    return next(iter(failed), 0) or next((code for code in codes if code), 0)
