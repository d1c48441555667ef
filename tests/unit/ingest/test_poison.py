"""No message can stop ingest: the known poisons are rejects with their own reasons, and a
message that makes any decode pass raise is an internal_error reject of that message alone."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from smartplace.config import IngestSettings, Settings
from smartplace.ingest.decode import messages as decode
from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas.candidate import TOO_DEEP_TO_SHOW
from smartplace.schemas.reasons import RejectReason

NOW_NS = 1_795_046_460 * 10**9  # 2026-11-19T00:01:00Z
LIMITS = DecodeLimits(
    topic_prefix="smartplace",
    max_payload_bytes=256 * 1024,
    max_readings_per_payload=1000,
    max_future_ns=300 * 10**9,
    max_age_ns=7 * 86400 * 10**9,
)
READING = "smartplace/air_quality/aq-0001/reading"
SENML = "smartplace/air_quality/aq-0001/senml"
DEEP = "[" * 300 + "]" * 300
"""Legal JSON (orjson reads 1,024 levels) that orjson will not write back (255 levels)."""


def verdicts(*messages: tuple[str, bytes]) -> tuple[list[tuple[str, str, str]], int]:
    batch = decode_messages([RawMessage(t, p, NOW_NS) for t, p in messages], LIMITS)
    rejects = [(r.reason.value, r.field_path, r.payload_excerpt[:40]) for r in batch.rejects]
    return rejects, batch.accepted


GOOD = (READING, b'{"pm25_ugm3": 5}')


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ((SENML, b'[{"bt":1e303,"n":"pm25","u":"ug/m3","v":5}]'), ("bad_timestamp", "[0]")),
        ((SENML, b'[{"bt":-1e303,"n":"pm25","u":"ug/m3","v":5}]'), ("bad_timestamp", "[0]")),
        ((SENML, b'[{"n":"pm25","u":"ug/m3","v":5,"t":1e300}]'), ("bad_timestamp", "[0]")),
        ((READING, f"[{DEEP}]".encode()), ("wrong_shape", "[0]")),
        ((READING, f'[{{"pm25_ugm3":"x","zz":{DEEP}}}]'.encode()), ("wrong_type", "[0].pm25_ugm3")),
        (
            (SENML, f'[{{"n":"foo","u":"ug/m3","v":5,"zz":{DEEP}}}]'.encode()),
            ("unknown_measurement", "[0]"),
        ),
        (
            (SENML, f'[{{"n":"pm25","u":"ug/m3","v":-5,"zz":{DEEP}}}]'.encode()),
            ("out_of_range", "pm25_ugm3"),
        ),
        (
            (
                READING,
                f'[{{"sensordatavalues":[{{"value_type":"x","value":"1"}}],"z":{DEEP}}}]'.encode(),
            ),
            ("unknown_measurement", "[0].sensordatavalues[0]"),
        ),
    ],
)
def test_each_known_poison_is_a_reject_with_its_reason_and_the_batch_goes_on(
    message: tuple[str, bytes], expected: tuple[str, str]
) -> None:
    rejects, accepted = verdicts(GOOD, message, GOOD)
    assert [(reason, path) for reason, path, _ in rejects] == [expected]
    assert accepted == 2


def test_a_part_too_deep_to_write_back_is_excerpted_as_such() -> None:
    rejects, _ = verdicts((READING, f"[{DEEP}]".encode()))
    assert rejects == [("wrong_shape", "[0]", TOO_DEEP_TO_SHOW.decode()[:40])]


def senml_pack(readings: int) -> bytes:
    base = {"bt": NOW_NS / 1e9 - 3600, "bu": "ug/m3"}
    return orjson.dumps(
        [{**base, "n": "pm25", "v": 5}]
        + [{"n": "pm25", "t": i, "v": 5} for i in range(1, readings)]
    )


def test_a_senml_pack_over_the_readings_limit_is_refused_as_native_arrays_are() -> None:
    over = decode_messages([RawMessage(SENML, senml_pack(1001), NOW_NS)], LIMITS)
    assert [(r.reason, r.detail) for r in over.rejects] == [
        (RejectReason.BATCH_TOO_LONG, "more than 1000 readings")
    ]
    assert over.accepted == 0
    at_limit = decode_messages([RawMessage(SENML, senml_pack(1000), NOW_NS)], LIMITS)
    assert (at_limit.rejects, at_limit.accepted) == ([], 1000)


def test_a_native_array_over_the_readings_limit_is_refused() -> None:
    payload = orjson.dumps([{"pm25_ugm3": 5}] * 1001)
    rejects, accepted = verdicts((READING, payload))
    assert [reason for reason, _, _ in rejects] == ["batch_too_long"]
    assert accepted == 0


def test_a_sensor_community_record_with_more_values_than_any_firmware_is_refused() -> None:
    entries = [{"value_type": "P2", "value": "5"}] + [{"value_type": "x", "value": "1"}] * 64
    rejects, accepted = verdicts((READING, orjson.dumps({"sensordatavalues": entries})))
    assert [reason for reason, _, _ in rejects] == ["batch_too_long"]
    assert accepted == 0


def test_a_status_array_over_the_readings_limit_is_refused() -> None:
    payload = orjson.dumps([{"battery_pct": 50}] * 1001)
    rejects, accepted = verdicts(("smartplace/air_quality/aq-0001/status", payload))
    assert [reason for reason, _, _ in rejects] == ["batch_too_long"]
    assert accepted == 0


POISON = b'[{"n":"pm25","u":"ug/m3","v":666}]'


def test_a_message_that_makes_its_format_raise_is_an_internal_error_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = decode.senml_candidates

    def breaks_on_666(document: Any, payload: bytes, *args: Any) -> Any:
        if payload == POISON:
            raise ZeroDivisionError("division by zero")
        return real(document, payload, *args)

    monkeypatch.setattr(decode, "senml_candidates", breaks_on_666)
    batch = decode_messages(
        [RawMessage(*GOOD, NOW_NS), RawMessage(SENML, POISON, NOW_NS), RawMessage(*GOOD, NOW_NS)],
        LIMITS,
    )
    [reject] = batch.rejects
    assert (reject.reason, reject.topic, reject.device_id, reject.payload_excerpt) == (
        RejectReason.INTERNAL_ERROR,
        SENML,
        "aq-0001",
        POISON.decode(),
    )
    assert reject.detail.startswith(
        "ZeroDivisionError at tests.unit.ingest.test_poison:breaks_on_666:"
    )
    assert reject.detail.endswith(": division by zero")
    assert batch.accepted == 2


@pytest.mark.parametrize("stage", ["_accept_group", "_validate_group", "screen_rows"])
def test_a_message_that_makes_a_batch_wide_pass_raise_is_an_internal_error_alone(
    monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    real = getattr(decode, stage)

    def breaks_on_6_66(*args: Any, **kwargs: Any) -> Any:
        if "6.66" in repr([a for a in args if not isinstance(a, decode._Rejects)]):
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(decode, stage, breaks_on_6_66)
    poison = RawMessage("smartplace/air_quality/aq-0666/reading", b'{"pm25_ugm3": 6.66}', NOW_NS)
    refused = RawMessage(READING, b'{"pm25_ugm3": -1}', NOW_NS)
    batch = decode_messages(
        [RawMessage(*GOOD, NOW_NS), refused, poison, RawMessage(*GOOD, NOW_NS)], LIMITS
    )
    assert [(r.reason, r.device_id) for r in batch.rejects] == [
        (RejectReason.OUT_OF_RANGE, "aq-0001"),
        (RejectReason.INTERNAL_ERROR, "aq-0666"),
    ]
    assert batch.rejects[1].detail.startswith("RuntimeError at tests.unit.ingest.test_poison:")
    assert [str(d) for c in batch.columns for d in c.device_ids] == ["aq-0001", "aq-0001"]


def test_the_pipeline_counts_and_stores_an_internal_error_like_any_reject(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def always_breaks(*args: Any) -> Any:
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(decode, "senml_candidates", always_breaks)
    settings = Settings(ingest=IngestSettings(require_registered_devices=False))
    pipeline = Pipeline(settings)
    prefix = settings.mqtt.topic_prefix
    out = pipeline.process(
        [
            RawMessage(f"{prefix}/air_quality/aq-0001/senml", b"[]", NOW_NS),
            RawMessage(f"{prefix}/air_quality/aq-0001/reading", b'{"pm25_ugm3": 5}', NOW_NS),
        ]
    )
    assert [r.reason for r in out.rejects] == [RejectReason.INTERNAL_ERROR]
    assert out.accepted == 1
    [line] = [line for line in out.raw.lines if line.startswith("ingest_rejects,")]
    assert "reason=internal_error" in line
    [ledger] = pipeline.ledger_points().lines
    assert "rejected_internal_error=1i" in ledger
