"""Latency of typical open data requests, against a real influxd this bench starts itself.

It fills a fresh influxd (free ports, temp dir) with a year of hourly air quality,
index and footfall aggregates and daily bins for 25 sites, serves the feeds app
with uvicorn on a free port, and times each request type over real HTTP.
Prints p50 and p95 in milliseconds (this machine is shared and noisy: compare
runs, not single figures).

    .venv/bin/python -m bench.feeds_latency [--requests 200]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from smartplace.config import InfluxSettings, Settings
from smartplace.feeds.app import create_app
from smartplace.influx import InfluxClient
from smartplace.stack import InfluxdServer, find_influxd, free_port

SITES = 25
END_S = int(time.time()) // 86_400 * 86_400  # today, 00:00 UTC: the data is current
DAYS = 365


def fill(influx: InfluxClient) -> None:
    influx.ensure_storage()
    lines: list[str] = []

    def flush(force: bool = False) -> None:
        if lines and (force or len(lines) >= 50_000):
            influx.write(lines, "agg")
            lines.clear()

    for site in range(SITES):
        tags = f"device_id=d-{site:02d},site=site-{site:02d}"
        for hour in range(DAYS * 24):
            ts = (END_S - DAYS * 86_400 + hour * 3600) * 10**9
            lines.append(
                f"air_quality_1h,{tags} pm25_ugm3_mean={5 + hour % 7}.5,pm10_ugm3_mean=11.0,"
                f"no2_ugm3_mean=21.0,temperature_c_mean=9.5,humidity_pct_mean=80.0,"
                f"pm25_ugm3_count=60i {ts}"
            )
            lines.append(f'daqi_1h,site=site-{site:02d} index=2i,band="Low",pollutant="pm25" {ts}')
            lines.append(f"footfall_1h,{tags} count_in_sum={hour % 300}i,count_out_sum=9i {ts}")
            flush()
        for day in range(DAYS):
            ts = (END_S - DAYS * 86_400 + day * 86_400) * 10**9
            lines.append(f"bin_1d,{tags} fill_pct_max=71.5,collections=1i {ts}")
        influx.write(
            [f'device_info,{tags},kind=air_quality status="active",latitude=53.41,longitude=-2.15'],
            "raw",
        )
    flush(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = InfluxdServer(find_influxd(), Path(tmp), free_port(), free_port())
        server.start()
        try:
            settings = Settings(influx=InfluxSettings(url=server.url, database="smartplace"))
            with InfluxClient(settings.influx) as influx:
                fill(influx)
            port = free_port()
            web = uvicorn.Server(
                uvicorn.Config(create_app(settings), port=port, log_level="warning")
            )
            threading.Thread(target=web.run, daemon=True).start()
            while not web.started:
                time.sleep(0.05)
            run(f"http://127.0.0.1:{port}", args.requests)
            web.should_exit = True
        finally:
            server.stop()


def run(base: str, requests: int) -> None:
    def day(offset: int) -> str:
        return datetime.fromtimestamp(END_S + offset * 86_400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    last_day = f"from={day(-1)}&to={day(0)}"
    last_week = f"from={day(-7)}&to={day(0)}"
    cases = {
        "GET /datasets": "/datasets",
        "footfall, one site, one day, CSV": f"/datasets/footfall-hourly?site=site-03&{last_day}&format=csv",
        "air quality, one site, a week, JSON": f"/datasets/air-quality-hourly?site=site-07&{last_week}",
        "index, all 25 sites, a day, GeoJSON": f"/datasets/air-quality-index-hourly?{last_day}&format=geojson",
        "bins, one site, a year, CSV": f"/datasets/bins-daily?site=site-11&from={day(-365)}&to={day(0)}&format=csv",
        "GET /sites (latest of 4 datasets per site)": "/sites",
    }
    with httpx.Client(base_url=base, timeout=60) as client:
        etag = client.get(cases["footfall, one site, one day, CSV"]).headers["etag"]
        print(f"{'request':<46} {'p50 ms':>8} {'p95 ms':>8}")
        for name, path in cases.items():
            report(name, [timed(client, path) for _ in range(requests)])
        conditional = [
            timed(client, cases["footfall, one site, one day, CSV"], {"If-None-Match": etag})
            for _ in range(requests)
        ]
        report("the same CSV, If-None-Match (304)", conditional)


def timed(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    response = client.get(path, headers=headers)
    response.read()
    assert response.status_code in (200, 304), (path, response.status_code, response.text[:200])
    return (time.perf_counter() - started) * 1000


def report(name: str, samples: list[float]) -> None:
    p50, p95 = np.percentile(samples, [50, 95])
    print(f"{name:<46} {p50:>8.1f} {p95:>8.1f}")


if __name__ == "__main__":
    main()
