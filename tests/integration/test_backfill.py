"""A week's backfill of the default fleet, through the real broker and ingest, lands whole."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import orjson
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.publisher import Publisher
from smartplace.simulator import modes
from smartplace.simulator.fleet import load_fleet
from smartplace.simulator.traffic import Traffic
from tests.conftest import RunningIngest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COUNTED_FIELD = {
    "air_quality": "no2_ugm3",
    "footfall": "count_in",
    "bin": "fill_pct",
    "device_status": "battery_pct",
}


def test_a_seven_day_backfill_leaves_every_recorded_reading_in_influxdb(
    settings: Settings, running_ingest: RunningIngest, influx: InfluxClient, tmp_path: Path
) -> None:
    traffic = Traffic(load_fleet(), settings.mqtt.topic_prefix, array_max=60)
    oracle_path = tmp_path / "oracle.jsonl"
    publisher = Publisher(
        settings.mqtt, f"backfill-{settings.mqtt.client_id}", settings.mqtt.simulator_account()
    )
    publisher.start()
    try:
        with oracle_path.open("wb") as oracle:
            sender = modes.Sender(lambda _message: publisher, oracle)
            modes.backfill(traffic, sender, threading.Event(), days=7)
    finally:
        publisher.stop()
    running_ingest.wait_for_received(sender.summary.messages, timeout_s=240)

    expected: Counter[tuple[str, str]] = Counter()
    for line in oracle_path.read_bytes().splitlines():
        record = orjson.loads(line)
        if record["sent"]:
            expected[record["kind"], record["device_id"]] += 1
    assert sum(expected.values()) > 100_000  # a week of 25 devices

    stored: Counter[tuple[str, str]] = Counter()
    for kind, field in COUNTED_FIELD.items():
        for row in influx.query_rows(
            f'SELECT count("{field}") FROM "raw"."{kind}" GROUP BY "device_id"'
        ):
            stored[kind, row["device_id"]] = row["count"]
    assert stored == expected


def test_simulate_command_backfills_with_faults_and_writes_the_oracle(
    settings: Settings, tmp_path: Path
) -> None:
    oracle = tmp_path / "oracle.jsonl"
    env = {
        **os.environ,
        "SMARTPLACE_MQTT__PORT": str(settings.mqtt.port),
        "SMARTPLACE_MQTT__TOPIC_PREFIX": settings.mqtt.topic_prefix,
        "SMARTPLACE_MQTT__SIMULATOR_USERNAME": settings.mqtt.simulator_username or "",
        "SMARTPLACE_MQTT__SIMULATOR_PASSWORD": (
            settings.mqtt.simulator_password.get_secret_value()
            if settings.mqtt.simulator_password
            else ""
        ),
    }
    command = [sys.executable, "-m", "smartplace", "simulate", "--backfill", "0.1"]
    result = subprocess.run(
        [*command, "--fault", "duplicate=0.1", "--record", str(oracle)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    records = [orjson.loads(line) for line in oracle.read_bytes().splitlines()]
    duplicated = sum(1 for r in records if "duplicate" in r["faults"])
    assert 0 < duplicated < len(records) / 4
    assert f"Published {len(records):,} readings" in result.stdout

    bad = subprocess.run(
        [*command, "--fault", "gremlins=0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0
    assert "unknown fault gremlins" in bad.stdout + bad.stderr
