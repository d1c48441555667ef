"""Footfall, bin and device status readings: their ranges and cross-field rules."""

from __future__ import annotations

import orjson
import pytest

from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.write.points import raw_lines
from smartplace.schemas import fill_pct_from_distance

NOW_NS = 1_800_000_000 * 10**9
LIMITS = DecodeLimits("smartplace", 65536, 100, 300 * 10**9, 7 * 86400 * 10**9)


def decode(topic: str, body: object) -> tuple[list[str], list[str]]:
    batch = decode_messages([RawMessage(topic, orjson.dumps(body), NOW_NS)], LIMITS)
    lines = [line for cols in batch.columns for line in raw_lines(cols)]
    return lines, [f"{r.reason.value}:{r.field_path}" for r in batch.rejects]


def test_footfall_counts_are_written_as_integers() -> None:
    lines, rejects = decode(
        "smartplace/footfall/ff-0001/reading",
        {"ts": 1_800_000_000, "count_in": 12, "count_out": 9, "interval_s": 900, "occupancy": 3},
    )
    assert rejects == []
    assert lines == [
        "footfall,device_id=ff-0001,kind=footfall "
        "count_in=12i,count_out=9i,interval_s=900i,occupancy=3i,qc_flags=0i 1800000000000000000"
    ]


@pytest.mark.parametrize(
    ("body", "reject"),
    [
        ({"count_in": 1, "count_out": 1}, "missing_field:interval_s"),
        ({"count_in": -1, "count_out": 1, "interval_s": 60}, "out_of_range:count_in"),
        ({"count_in": 1.5, "count_out": 1, "interval_s": 60}, "wrong_type:count_in"),
        (
            {"count_in": 1000, "count_out": 300, "interval_s": 60},
            "out_of_range:",
        ),  # 21.7 people a second
        ({"count_in": 1, "count_out": 1, "interval_s": 0}, "out_of_range:interval_s"),
    ],
)
def test_implausible_footfall_is_refused(body: dict[str, object], reject: str) -> None:
    assert decode("smartplace/footfall/ff-0001/reading", body) == ([], [reject])


def test_a_bin_reading_writes_booleans_as_booleans() -> None:
    lines, rejects = decode(
        "smartplace/bin/bin-0001/reading",
        {
            "ts": 1_800_000_000,
            "fill_pct": 85.5,
            "temperature_c": 71.0,
            "tilt": False,
            "fire_alarm": True,
        },
    )
    assert rejects == []
    assert lines == [
        "bin,device_id=bin-0001,kind=bin "
        "fill_pct=85.5,temperature_c=71.0,tilt=false,fire_alarm=true,qc_flags=0i 1800000000000000000"
    ]


def test_a_bin_distance_without_a_profile_says_what_is_missing() -> None:
    lines, rejects = decode("smartplace/bin/bin-0001/reading", {"distance_mm": 400})
    assert (lines, rejects) == ([], ["missing_field:"])


@pytest.mark.parametrize(
    ("distance", "fill"),
    [(1000, 0.0), (1200, 0.0), (575, 50.0), (150, 100.0), (90, 100.0), (830, 20.0)],
)
def test_fill_from_distance_is_linear_between_empty_and_full_and_clamped(
    distance: float, fill: float
) -> None:
    assert fill_pct_from_distance(distance, empty_distance_mm=1000, full_distance_mm=150) == fill


def test_device_status_carries_text_and_numbers() -> None:
    lines, rejects = decode(
        "smartplace/bin/bin-0001/status",
        {
            "ts": 1_800_000_000,
            "battery_pct": 92,
            "rssi_dbm": -97,
            "firmware": 'v1.2 "b"',
            "uptime_s": 3600,
        },
    )
    assert rejects == []
    assert lines == [
        "device_status,device_id=bin-0001,kind=bin "
        'battery_pct=92.0,rssi_dbm=-97.0,uptime_s=3600i,firmware="v1.2 \\"b\\"",qc_flags=0i 1800000000000000000'
    ]


def test_an_empty_status_is_refused() -> None:
    assert decode("smartplace/bin/bin-0001/status", {"ts": 1_800_000_000}) == (
        [],
        ["no_measurements:"],
    )
