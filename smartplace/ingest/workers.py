"""`smartplace ingest` with several workers: start one process per worker and stop them together.

Each worker is the same `smartplace ingest`, told its index; it loads the
same settings. If one dies, the others are stopped (gracefully, so they
drain) and the exit code says so: whatever supervises smartplace (systemd,
docker) restarts the whole, and each worker's spool and session carry on.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading

from smartplace.config import Settings

log = logging.getLogger(__name__)

POLL_S = 0.5


def run_workers(settings: Settings, log_level: str, stop: threading.Event) -> int:
    """Run ``settings.ingest.workers`` workers until ``stop`` or one of them ends; their exit code."""
    count = settings.ingest.workers
    children = [
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
        for index in range(count)
    ]
    log.info("ingest started %d workers pids=%s", count, [c.pid for c in children])
    failed = 0
    while not stop.wait(POLL_S):
        ended = [(index, c.returncode) for index, c in enumerate(children) if c.poll() is not None]
        if ended:
            index, code = ended[0]
            log.error("ingest worker %d exited with %s: stopping the others", index, code)
            failed = code or 1
            break
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # each drains its spool, as on its own
    codes = [child.wait() for child in children]
    return failed or next((code for code in codes if code), 0)
