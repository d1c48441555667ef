"""Two ingest workers as `smartplace ingest` starts them: each device handled by one, nothing twice.

Real mosquitto and influxd; the readings are known, so every raw point and
every minute's mean is checked against values computed here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from smartplace.config import Settings, settings_environment
from smartplace.influx import InfluxClient
from smartplace.ingest.receive.shard import shard_of
from smartplace.stack import free_port_block

from .helpers import points, publish_all, reading_message

pytestmark = pytest.mark.integration

NS = 1_000_000_000
MINUTE_NS = 60 * NS
DEVICES = [f"aq-{n:04d}" for n in range(1, 9)]
READINGS_PER_DEVICE = 30  # every 10 s: five whole minutes


def _env(settings: Settings, http_port: int, stack_dir: Path) -> dict[str, str]:
    ingest = settings.ingest.model_copy(
        update={"stats_interval_s": 0.5, "http_port": http_port, "workers": 2}
    )
    mqtt = settings.mqtt.model_copy(update={"extra_subscriptions": []})
    child = settings.model_copy(update={"mqtt": mqtt, "ingest": ingest, "stack_dir": stack_dir})
    return {**os.environ, **settings_environment(child)}


def _wait_ready(ports: list[int], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    for port in ports:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"worker on port {port} never became ready"
            time.sleep(0.1)


def test_two_workers_split_the_devices_and_store_every_reading_once_with_exact_means(
    settings: Settings, influx: InfluxClient
) -> None:
    prefix = settings.mqtt.topic_prefix
    shards = {
        device: shard_of(prefix, reading_message(settings, device, b"")[0], 2) for device in DEVICES
    }
    assert set(shards.values()) == {0, 1}, "the chosen devices must reach both workers"

    now_ns = int(datetime.now(UTC).timestamp()) * NS
    t0 = now_ns - now_ns % MINUTE_NS - 10 * MINUTE_NS
    readings = {
        (device, t0 + i * 10 * NS): float(d * 100 + i)
        for d, device in enumerate(DEVICES)
        for i in range(READINGS_PER_DEVICE)
    }
    port = free_port_block(2)  # worker N serves health on port + N
    worker_ports = [port, port + 1]
    process = subprocess.Popen(
        [sys.executable, "-m", "smartplace", "ingest", "--log-level", "WARNING"],
        env=_env(settings, port, Path(tempfile.mkdtemp(prefix="smartplace-workers-"))),
    )
    try:
        _wait_ready(worker_ports)
        publish_all(
            settings,
            [
                reading_message(settings, device, {"ts": ts / NS, "no2_ugm3": value})
                for (device, ts), value in readings.items()
            ],
        )
        deadline = time.monotonic() + 30
        while len(points(influx, "raw", "air_quality")) < len(readings):
            assert time.monotonic() < deadline, "not every reading landed within 30 s"
            time.sleep(0.2)
        time.sleep(1)  # stats of the last batches
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0  # both workers drained and stopped cleanly

    raw = points(influx, "raw", "air_quality")
    assert sorted((p["device_id"], p["time"], p["no2_ugm3"]) for p in raw) == sorted(
        (device, ts, value) for (device, ts), value in readings.items()
    )  # every reading, once
    minutes: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (device, ts), value in readings.items():
        minutes[device, ts - ts % MINUTE_NS].append(value)
    means = {
        (p["device_id"], p["time"]): p["no2_ugm3_mean"]
        for p in points(influx, "agg", "air_quality_1m")
    }
    assert means == {key: sum(values) / len(values) for key, values in minutes.items()}

    spooled: dict[str, int] = {}
    for row in points(influx, "raw", "ingest_stats"):
        spooled[row["worker"]] = max(spooled.get(row["worker"], 0), row["spooled"])
    client = settings.mqtt.client_id
    assert spooled == {
        f"{client}-w{index}": READINGS_PER_DEVICE * sum(1 for s in shards.values() if s == index)
        for index in (0, 1)
    }  # each worker took exactly its own devices' messages
