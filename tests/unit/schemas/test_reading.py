from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from smartplace.schemas import AirQualityReading, timestamp_to_ns
from smartplace.schemas.topics import parse_reading_topic, reading_topic


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("2026-11-24T10:00:00Z", 1_795_514_400_000_000_000),
        (
            "2026-11-24T10:00:00.123456789Z",
            1_795_514_400_123_456_000,
        ),  # TTN's 9 digits, kept to the us
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
    parsed = parse_reading_topic("smartplace", topic)
    assert parsed is not None
    assert (parsed.kind, parsed.device_id) == ("air_quality", "aq-0001")
    assert parse_reading_topic("smartplace", "smartplace/air_quality//reading") is None
