"""A year of hourly rows for fifty sites, exported page by page: streamed, never held.

The service runs as its own process (``smartplace feeds serve``) so its memory
can be watched from outside; its peak resident set must stay under
EXPORT_RSS_BOUND_MIB whatever the size of the export.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from smartplace.config import InfluxSettings
from smartplace.influx import InfluxClient
from smartplace.stack import InfluxdServer, free_port
from smartplace.stack.process import PeakMemory

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SITES, HOURS = 50, 24 * 365
START_S = 1_735_689_600  # 2025-01-01 00:00 UTC
EXPORT_RSS_BOUND_MIB = 200


def _fill(influx: InfluxClient) -> None:
    influx.ensure_storage()
    batch: list[str] = []
    for site in range(SITES):
        for hour in range(HOURS):
            ts = (START_S + hour * 3600) * 10**9
            batch.append(
                f"footfall_1h,device_id=ff-{site:04d},site=site-{site:02d} "
                f"count_in_sum={hour % 97}i,count_out_sum={hour % 89}i {ts}"
            )
            if len(batch) == 50_000:
                influx.write(batch, "agg")
                batch = []
    influx.write(batch, "agg")


def test_a_years_export_for_fifty_sites_streams_in_bounded_memory(
    influxd: InfluxdServer, tmp_path: Path
) -> None:
    settings = InfluxSettings(url=influxd.url, database=f"export_{uuid.uuid4().hex[:8]}")
    with InfluxClient(settings) as influx:
        _fill(influx)
    port = free_port()
    env = {
        **os.environ,
        "SMARTPLACE_INFLUX__URL": settings.url,
        "SMARTPLACE_INFLUX__DATABASE": settings.database,
        # Next links are made from the public address, never the Host header.
        "SMARTPLACE_FEEDS__PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    log = (tmp_path / "feeds.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "smartplace", "feeds", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    memory = PeakMemory(server.pid)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/datasets", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (tmp_path / "feeds.log").read_text()
                time.sleep(0.2)
        started = time.monotonic()
        url: str | None = (
            f"{base}/datasets/footfall-hourly?from=2025-01-01T00:00:00Z"
            "&to=2026-01-01T00:00:00Z&format=csv&limit=100000"
        )
        rows = pages = 0
        with httpx.Client(timeout=120) as client:
            while url:
                with client.stream("GET", url) as response:
                    assert response.status_code == 200
                    lines = sum(chunk.count(b"\n") for chunk in response.iter_bytes())
                    rows += lines - 1  # the header row
                    url = response.links.get("next", {}).get("url")
                pages += 1
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(10)
    print(
        f"\nEXPORT {rows:,} rows in {pages} pages, {elapsed:.1f} s,"
        f" feeds peak RSS {memory.peak_mib:.0f} MiB"
    )
    assert rows == SITES * HOURS
    assert pages == -(-SITES * HOURS // 100_000)
    assert 0 < memory.peak_kib < EXPORT_RSS_BOUND_MIB * 1024
