"""Readings published through the real broker land in the real InfluxDB, exactly.

The aggregates are checked against mean/min/max/count computed here, in plain
Python, from the same readings: not by calling the code under test.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.schemas import AirQualityReading

from .helpers import points, publish_all, reading_message

pytestmark = pytest.mark.integration

FIELDS = AirQualityReading.measurement_fields()
NS = 1_000_000_000
MINUTE_NS = 60 * NS


def _start_of_minute_ns(minutes_ago: int) -> int:
    now_ns = int(datetime.now(UTC).timestamp()) * NS
    return now_ns - now_ns % MINUTE_NS - minutes_ago * MINUTE_NS


def _known_readings(rng: random.Random, exact: bool) -> list[dict[str, Any]]:
    """Readings of 3 devices over 4 minutes; ``exact`` uses quarter steps, so every sum is exact."""
    t0 = _start_of_minute_ns(minutes_ago=10)
    readings = []
    for device in ("aq-0001", "aq-0002", "aq-0003"):
        for second in sorted(rng.sample(range(0, 240), 30)):

            def value(low: float, high: float) -> float:
                return (
                    rng.randrange(int(low * 4), int(high * 4)) / 4
                    if exact
                    else rng.uniform(low, high)
                )

            pm25 = value(0, 200)
            reading: dict[str, Any] = {
                "device_id": device,
                "ts": (t0 + second * NS) // 1_000_000,  # epoch milliseconds
                "pm25_ugm3": pm25,
                "pm10_ugm3": pm25 + value(0, 100),  # PM10 holds PM2.5: never less
                "temperature_c": value(-10, 30),
            }
            if rng.random() < 0.7:  # not every device measures NO2 every time
                reading["no2_ugm3"] = value(0, 150)
            readings.append(reading)
    return readings


def _publish(settings: Settings, readings: list[dict[str, Any]]) -> int:
    """Most readings one per message; each device's last five as one array payload."""
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for reading in readings:
        by_device[reading["device_id"]].append(reading)
    messages = []
    for device, items in by_device.items():
        messages += [reading_message(settings, device, item) for item in items[:-5]]
        messages.append(reading_message(settings, device, items[-5:]))
    return publish_all(settings, messages)


def _expected_aggregates(readings: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for reading in readings:
        ts_ns = reading["ts"] * 1_000_000
        groups[(reading["device_id"], ts_ns - ts_ns % MINUTE_NS)].append(reading)
    expected = {}
    for key, members in groups.items():
        fields: dict[str, Any] = {}
        for name in FIELDS:
            values = [m[name] for m in members if name in m]
            if values:
                fields[f"{name}_mean"] = sum(values) / len(values)
                fields[f"{name}_min"] = min(values)
                fields[f"{name}_max"] = max(values)
                fields[f"{name}_count"] = len(values)
        expected[key] = fields
    return expected


@pytest.mark.parametrize("exact", [True, False], ids=["quarter-steps", "arbitrary-floats"])
def test_published_readings_land_as_raw_points_and_exact_minute_aggregates(
    settings: Settings, influx: InfluxClient, running_ingest: Any, exact: bool
) -> None:
    rng = random.Random(20261124)
    readings = _known_readings(rng, exact)
    sent = _publish(settings, readings)
    running_ingest.wait_for_received(sent)

    raw = points(influx, "raw", "air_quality")
    expected_raw = sorted(
        (r["device_id"], r["ts"] * 1_000_000, {k: r[k] for k in FIELDS if k in r}) for r in readings
    )
    actual_raw = sorted(
        (p["device_id"], p["time"], {k: p[k] for k in FIELDS if k in p}) for p in raw
    )
    assert actual_raw == expected_raw  # same points, same values, to the last bit
    assert {p["kind"] for p in raw} == {"air_quality"}
    assert {p["qc_flags"] for p in raw} == {0}

    # Complete windows are written as the devices' time passes them; a graceful stop writes the last.
    running_ingest.close()
    aggregates = {(p["device_id"], p["time"]): p for p in points(influx, "agg", "air_quality_1m")}
    expected = _expected_aggregates(readings)
    assert set(aggregates) == set(expected)
    for key, fields in expected.items():
        actual = aggregates[key]
        for name, value in fields.items():
            if exact or not name.endswith("_mean"):
                assert actual[name] == value, (key, name)
            else:  # summation order may differ in the last bit for arbitrary floats
                assert actual[name] == pytest.approx(value, rel=1e-12, abs=1e-12), (key, name)
    stats = running_ingest.service.stats
    assert (stats.accepted, stats.rejected) == (len(readings), 0)


def test_ingest_creates_the_database_and_both_retention_policies(
    settings: Settings, influx: InfluxClient, running_ingest: Any
) -> None:
    policies = {
        row["name"]: row
        for row in influx.query_rows(f'SHOW RETENTION POLICIES ON "{settings.influx.database}"')
    }
    assert policies["raw"]["duration"] == "720h0m0s"
    assert policies["raw"]["default"] is True
    assert policies["agg"]["duration"] == "0s"  # kept indefinitely


def test_a_coarser_precision_truncates_what_influxdb_stores(
    settings: Settings, influx: InfluxClient
) -> None:
    from tests.conftest import RunningIngest

    coarse = settings.model_copy(
        update={"influx": settings.influx.model_copy(update={"precision": "s"})}
    )
    ingest = RunningIngest(coarse)
    ingest.start()
    try:
        t0 = _start_of_minute_ns(minutes_ago=5) + 12_345_678_901  # 12.345678901 s into the minute
        body = {"ts": datetime.fromtimestamp(t0 / 1e9, UTC).isoformat(), "pm25_ugm3": 4.0}
        ingest.wait_for_received(
            publish_all(settings, [reading_message(settings, "aq-0001", body)])
        )
    finally:
        ingest.close()
    [point] = points(influx, "raw", "air_quality")
    assert point["time"] == t0 - t0 % NS  # whole seconds
