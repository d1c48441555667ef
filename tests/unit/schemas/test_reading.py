from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from smartplace.schemas import AirQualityReading, timestamp_to_ns
from smartplace.schemas.topics import parse_topic, reading_topic


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("2026-11-24T10:00:00Z", 1_795_514_400_000_000_000),
        ("2026-11-24T10:00:00.123456789Z", 1_795_514_400_123_456_789),  # TTN: all 9 digits kept
        ("2026-11-24T10:00:00,5+00:00", 1_795_514_400_500_000_000),
        ("2026-11-24T11:00:00+01:00", 1_795_514_400_000_000_000),
        (
            "2026-11-24 10:00:00",
            1_795_514_400_000_000_000,
        ),  # no zone: UTC, as Sensor.Community means
        (1_795_514_400, 1_795_514_400_000_000_000),  # epoch seconds
        (1_795_514_400_250, 1_795_514_400_250_000_000),  # epoch milliseconds
        (1_795_514_400.5, 1_795_514_400_500_000_000),
    ],
)
def test_timestamps_normalise_to_utc_nanoseconds(value: object, ns: int) -> None:
    assert timestamp_to_ns(value) == ns


@pytest.mark.parametrize(
    "bad", ["2026-11-24T10:00:00.1234567891Z", "2026-13-01T00:00:00Z", "", "10:00"]
)
def test_unreadable_timestamps_are_refused(bad: str) -> None:
    with pytest.raises(PydanticCustomError, match="timestamp"):
        timestamp_to_ns(bad)


@given(st.integers(0, 32503680000 - 1))
def test_epoch_seconds_and_their_milliseconds_agree(seconds: int) -> None:
    if seconds >= 10**8:  # below 1e8 s (1973) the millisecond form would read as seconds
        assert timestamp_to_ns(seconds) == timestamp_to_ns(seconds * 1000)


def test_a_reading_needs_a_pollutant() -> None:
    with pytest.raises(ValidationError, match="at least one of pm1_ugm3"):
        AirQualityReading.model_validate({"temperature_c": 12.0})


def test_topics_round_trip() -> None:
    topic = reading_topic("smartplace", "air_quality", "aq-0001")
    assert topic == "smartplace/air_quality/aq-0001/reading"
    parsed = parse_topic("smartplace", topic)
    assert parsed is not None
    assert (parsed.kind, parsed.device_id, parsed.leaf) == ("air_quality", "aq-0001", "reading")
    assert parse_topic("smartplace", "smartplace/air_quality//reading") is None
    assert parse_topic("smartplace", "smartplace/bin/bin-1/senml") is not None


def test_ttn_uplink_topics_name_the_application_and_device() -> None:
    parsed = parse_topic("smartplace", "v3/app1@ttn/devices/dev1/up")
    assert parsed is not None
    assert (parsed.application, parsed.device_id, parsed.leaf) == ("app1@ttn", "dev1", "ttn")
    assert parse_topic("smartplace", "v3/app1@ttn/devices/dev1/join") is None
