"""A deterministic simulated day for 20 devices of each kind, through the real broker: the
aggregates in InfluxDB equal the same aggregates computed here, offline, from the published
readings (counts, minima and maxima exactly; means to 1e-9; p95 within the sketch's 2 %)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.windows.sketch import RELATIVE_ACCURACY
from smartplace.schemas import timestamp_to_ns
from smartplace.simulator.run import simulated_day

from .helpers import points, publish_all, reading_message

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOWS = {"15m": 900, "1h": 3600, "1d": 86400}
INTERVALS = {"air_quality": 300, "footfall": 900, "bin": 3600}
PM = ("pm1_ugm3", "pm25_ugm3", "pm10_ugm3")
NS = 1_000_000_000


def start_of(ts: int, length_s: int) -> int:
    return ts - ts % (length_s * NS)


def windows(
    day: dict[str, list[dict[str, Any]]],
) -> Iterator[tuple[str, str, int, list[dict[str, Any]]]]:
    """(window label, device, window start, its readings in time order) for every window length."""
    for label, length in WINDOWS.items():
        groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for device, readings in day.items():
            for r in readings:
                groups[(device, start_of(timestamp_to_ns(r["ts"]), length))].append(r)
        for (device, start), members in groups.items():
            yield label, device, start, members


def expected_air_quality(
    day: dict[str, list[dict[str, Any]]], skip: set[tuple[str, int]]
) -> dict[tuple[str, str, int], dict[str, Any]]:
    out = {}
    for label, device, start, members in windows(day):
        if any((device, timestamp_to_ns(r["ts"])) in skip for r in members):
            continue  # a flagged reading: which of its fields was left out is not stored
        fields: dict[str, Any] = {}
        for name in ("pm25_ugm3", "pm10_ugm3", "no2_ugm3", "temperature_c", "humidity_pct"):
            # PM in air at 85 % relative humidity or more is left out (DOMAIN.md section 2.3).
            values = [
                r[name]
                for r in members
                if name in r and not (name in PM and r["humidity_pct"] >= 85)
            ]
            if values and name in ("pm25_ugm3", "pm10_ugm3", "no2_ugm3"):
                ranked = sorted(values)
                fields[f"{name}_p95"] = ranked[math.ceil(0.95 * len(ranked)) - 1]  # nearest rank
            if values:
                fields |= {
                    f"{name}_mean": sum(values) / len(values),
                    f"{name}_min": min(values),
                    f"{name}_max": max(values),
                    f"{name}_count": len(values),
                }
        out[(f"air_quality_{label}", device, start)] = fields
    return out


def expected_footfall(
    day: dict[str, list[dict[str, Any]]],
) -> dict[tuple[str, str, int], dict[str, Any]]:
    out = {}
    for label, device, start, m in windows(day):
        people_in, people_out = sum(r["count_in"] for r in m), sum(r["count_out"] for r in m)
        out[(f"footfall_{label}", device, start)] = {
            "count_in_sum": people_in,
            "count_out_sum": people_out,
            "net_flow": people_in - people_out,
            "interval_s_sum": sum(r["interval_s"] for r in m),
            "readings": len(m),
        }
    return out


def expected_bins(
    day: dict[str, list[dict[str, Any]]],
) -> dict[tuple[str, str, int], dict[str, Any]]:
    collected = {}
    for device, readings in day.items():
        previous = None
        for r in readings:
            fill = r["fill_pct"]
            collected[(device, r["ts"])] = previous is not None and (
                previous - fill >= 40 or (fill < 15 and previous > 50)
            )
            previous = fill
    out = {}
    for label, device, start, m in windows(day):
        first, last = m[0], m[-1]
        fields: dict[str, Any] = {
            "fill_pct_last": last["fill_pct"],
            "fill_pct_max": max(r["fill_pct"] for r in m),
            "readings": len(m),
            "collections": sum(collected[(device, r["ts"])] for r in m),
            "temperature_c_max": max(r["temperature_c"] for r in m),
        }
        hours = (last["ts"] - first["ts"]) / 3600
        if last["fill_pct"] > first["fill_pct"] and hours > 0 and last["fill_pct"] < 100:
            fields["time_to_full_h"] = round(
                (100 - last["fill_pct"]) / ((last["fill_pct"] - first["fill_pct"]) / hours), 2
            )
        out[(f"bin_{label}", device, start)] = fields
    return out


def test_a_simulated_day_aggregates_exactly_as_computed_offline(
    settings: Settings, influx: InfluxClient, running_ingest: Any
) -> None:
    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=2
    )
    days = {
        kind: simulated_day(
            kind, [f"{kind[:2]}-{i:04d}" for i in range(20)], day_start, interval, seed=2026
        )
        for kind, interval in INTERVALS.items()
    }
    messages = [
        reading_message(settings, device, readings, kind=kind)
        for kind, day in days.items()
        for device, readings in day.items()
    ]
    running_ingest.wait_for_received(publish_all(settings, messages), timeout_s=120)
    running_ingest.close()  # a graceful stop writes the windows still open
    assert running_ingest.service.stats.rejected == 0

    raw = points(influx, "raw", "air_quality")
    assert len(raw) == 20 * 288
    skip = {(p["device_id"], p["time"]) for p in raw if p["qc_flags"] & (2 | 4)}  # spike, flatline
    assert len(skip) < 0.01 * len(raw)

    expected = (
        expected_air_quality(days["air_quality"], skip)
        | expected_footfall(days["footfall"])
        | expected_bins(days["bin"])
    )
    compared = 0
    for measurement in sorted({key[0] for key in expected}):
        stored = {(p["device_id"], p["time"]): p for p in points(influx, "agg", measurement)}
        wanted = {(d, t): f for (m, d, t), f in expected.items() if m == measurement}
        assert set(wanted) <= set(stored), measurement
        for key, fields in wanted.items():
            for name, value in fields.items():
                got = stored[key][name]
                if name.endswith("_p95"):  # a sketch: within its relative accuracy
                    assert got == pytest.approx(value, rel=RELATIVE_ACCURACY, abs=1e-3), (
                        measurement,
                        key,
                        name,
                    )
                elif name.endswith("_mean"):
                    assert got == pytest.approx(value, rel=1e-9), (measurement, key, name)
                else:
                    assert got == value, (measurement, key, name)
            compared += 1
    assert compared > 20 * (96 + 24 + 1) + 20 * (24 + 24 + 1)  # footfall and bins, every window
