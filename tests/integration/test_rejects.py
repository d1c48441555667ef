"""Bad payloads interleaved with good ones: every good reading lands, every bad one is
counted by its reason, in the service's stats and in InfluxDB's ingest_rejects."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient

from .helpers import Message, points, publish_all, reading_message

pytestmark = pytest.mark.integration


def _iso(minutes_ago: float, second: int) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago)
    return (moment.replace(second=second)).isoformat().replace("+00:00", "Z")


def _bad_messages(settings: Settings) -> list[tuple[Message, str]]:
    prefix = settings.mqtt.topic_prefix
    good_shape = {"ts": _iso(5, 1), "pm25_ugm3": 5.0}
    return [
        (reading_message(settings, "aq-0001", b'{"pm25_ugm3": 5.0'), "malformed_json"),
        (reading_message(settings, "aq-0001", b"\xff\xfe not utf-8"), "malformed_json"),
        (reading_message(settings, "aq-0001", b'"just a string"'), "wrong_shape"),
        (reading_message(settings, "aq-0001", b"[]"), "wrong_shape"),
        (
            reading_message(settings, "aq-0001", {"ts": _iso(5, 2), "temperature_c": 11.0}),
            "no_measurements",
        ),
        (
            reading_message(settings, "aq-0001", {"ts": _iso(5, 3), "pm25_ugm3": 5000.0}),
            "out_of_range",
        ),
        (
            reading_message(settings, "aq-0001", {"ts": _iso(5, 4), "no2_ugm3": -20.0}),
            "out_of_range",
        ),
        (
            reading_message(settings, "aq-0001", {"ts": _iso(5, 5), "pm25_ugm3": "12.5"}),
            "wrong_type",
        ),
        (reading_message(settings, "aq-0001", {"ts": _iso(5, 6), "pm25_ugm3": True}), "wrong_type"),
        (reading_message(settings, "aq-0001", b'{"pm25_ugm3": 1e999}'), "not_finite"),
        (
            reading_message(settings, "aq-0001", {"ts": "yesterday", "pm25_ugm3": 5.0}),
            "bad_timestamp",
        ),
        (
            reading_message(settings, "aq-0001", {"ts": _iso(-60, 0), "pm25_ugm3": 5.0}),
            "future_timestamp",
        ),
        (
            reading_message(settings, "aq-0001", {"ts": _iso(60 * 24 * 30, 0), "pm25_ugm3": 5.0}),
            "stale_timestamp",
        ),
        (
            reading_message(settings, "aq-0001", {**good_shape, "device_id": "aq-0002"}),
            "topic_device_mismatch",
        ),
        (reading_message(settings, "aq-0001", good_shape, kind="weather"), "unknown_kind"),
        (reading_message(settings, "AQ_0001", good_shape), "bad_device_id"),
        ((f"{prefix}/air_quality/aq-0001/oops", b"{}"), "unknown_topic"),
        (reading_message(settings, "aq-0001", b"[" + b"1," * 200_000 + b"1]"), "payload_too_large"),
    ]


def test_bad_payloads_are_counted_by_reason_and_every_good_reading_lands(
    settings: Settings, influx: InfluxClient, running_ingest: Any
) -> None:
    bad = _bad_messages(settings)
    good_readings = [
        {"ts": _iso(5, second), "pm25_ugm3": float(second), "no2_ugm3": 30.0 + second}
        for second in range(10, 10 + len(bad))
    ]
    messages: list[Message] = []
    for (message, _reason), reading in zip(bad, good_readings, strict=True):
        messages.append(message)
        messages.append(reading_message(settings, "aq-0001", reading))
    # An array with two good readings around a bad one: the bad element alone is refused.
    mixed = [
        {"ts": _iso(4, 1), "pm25_ugm3": 1.0},
        {"ts": _iso(4, 2), "pm25_ugm3": -3.0},
        {"ts": _iso(4, 3), "pm25_ugm3": 3.0},
    ]
    messages.append(reading_message(settings, "aq-0002", mixed))

    sent = publish_all(settings, messages)
    running_ingest.wait_for_received(sent)

    expected_reasons = Counter(reason for _message, reason in bad) + Counter({"out_of_range": 1})
    assert running_ingest.service.stats.rejected_by_reason == expected_reasons

    stored = Counter(p["reason"] for p in points(influx, "raw", "ingest_rejects"))
    assert stored == expected_reasons

    landed = {(p["device_id"], p["pm25_ugm3"]) for p in points(influx, "raw", "air_quality")}
    expected_good = {("aq-0001", r["pm25_ugm3"]) for r in good_readings} | {
        ("aq-0002", 1.0),
        ("aq-0002", 3.0),
    }
    assert landed == expected_good


def test_a_reject_keeps_what_an_engineer_needs_to_find_the_fault(
    settings: Settings, influx: InfluxClient, running_ingest: Any
) -> None:
    message = reading_message(
        settings, "aq-0042", {"ts": _iso(5, 0), "pm25_ugm3": 5000.0, "note": 'say "hi"\n'}
    )
    running_ingest.wait_for_received(publish_all(settings, [message]))

    [reject] = points(influx, "raw", "ingest_rejects")
    assert reject["reason"] == "out_of_range"
    assert reject["device_id"] == "aq-0042"
    assert reject["topic"] == message[0]
    assert reject["detail"].startswith("pm25_ugm3: Input should be less than or equal to 1000")
    assert '"pm25_ugm3":5000.0' in reject["payload"]
    assert reject["count"] == 1
