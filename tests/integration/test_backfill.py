"""A week's backfill of the default fleet, through the real broker and ingest, lands whole."""

from __future__ import annotations

import io
import threading
from collections import Counter
from pathlib import Path

import orjson
import pytest

from smartplace.accounts import simulator_client_id
from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.publisher import Publisher
from smartplace.simulator import modes
from smartplace.simulator.fleet import load_fleet
from smartplace.simulator.run import fleet_publishers
from smartplace.simulator.traffic import Traffic
from tests.conftest import RunningIngest
from tests.integration.helpers import run_smartplace

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
        settings.mqtt, simulator_client_id(settings.mqtt), settings.mqtt.simulator_account()
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
        "SMARTPLACE_MQTT__PORT": str(settings.mqtt.port),
        "SMARTPLACE_MQTT__TOPIC_PREFIX": settings.mqtt.topic_prefix,
        "SMARTPLACE_MQTT__SIMULATOR_USERNAME": settings.mqtt.simulator_username or "",
        "SMARTPLACE_MQTT__SIMULATOR_PASSWORD": (
            settings.mqtt.simulator_password.get_secret_value()
            if settings.mqtt.simulator_password
            else ""
        ),
    }
    command = ["simulate", "--backfill", "0.1"]
    result = run_smartplace(env, *command, "--fault", "duplicate=0.1", "--record", str(oracle))
    assert result.returncode == 0, result.stderr
    records = [orjson.loads(line) for line in oracle.read_bytes().splitlines()]
    duplicated = sum(1 for r in records if "duplicate" in r["faults"])
    assert 0 < duplicated < len(records) / 4
    assert f"Published {len(records):,} readings" in result.stdout

    bad = run_smartplace(env, *command, "--fault", "gremlins=0.5")
    assert bad.returncode != 0
    assert "unknown fault gremlins" in bad.stdout + bad.stderr


def test_a_provisioned_fleet_publishes_as_each_device_and_ingest_accepts_it(
    registered_settings: Settings,
    running_ingest: RunningIngest,
    influx: InfluxClient,
    tmp_path: Path,
) -> None:
    """--provision: the fleet is registered (registry, accounts, announcements) and each
    device publishes with its own credentials, under its own topics only."""
    fleet_file = tmp_path / "fleet.toml"
    fleet_file.write_text(
        'seed = 3\n[[sites]]\nname = "hat-works"\nlatitude = 53.4101\nlongitude = -2.1625\n'
        '[[devices]]\nsite = "hat-works"\nkind = "air_quality"\ncount = 2\ninterval_s = 60\n'
        '[[devices]]\nsite = "hat-works"\nkind = "bin"\ncount = 1\ninterval_s = 600\n'
    )
    fleet = load_fleet(fleet_file)
    publisher_for, publishers = fleet_publishers(registered_settings, fleet, provision=True)
    oracle = io.BytesIO()
    try:
        sender = modes.Sender(publisher_for, oracle)
        traffic = Traffic(fleet, registered_settings.mqtt.topic_prefix, array_max=10)
        modes.backfill(traffic, sender, threading.Event(), days=0.05)
    finally:
        for publisher in publishers:
            publisher.stop()
    assert len(publishers) == 4  # the simulator's own, and one per device
    running_ingest.wait_for_received(sender.summary.messages + 3)  # and 3 announcements
    assert running_ingest.service.stats.rejected == 0
    kinds = Counter(orjson.loads(line)["kind"] for line in oracle.getvalue().splitlines())
    rows = influx.query_rows('SELECT count("no2_ugm3") FROM "raw"."air_quality" GROUP BY "site"')
    assert [(row["site"], row["count"]) for row in rows] == [("hat-works", kinds["air_quality"])]
    assert kinds["air_quality"] > 100
