"""Decoding: each reject reason from a payload that earns it, and hostile input that never crashes."""

from __future__ import annotations

import base64
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartplace.ingest.decode.flags import QcFlag
from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas.reasons import RejectReason

NOW_NS = 1_795_046_460 * 10**9  # 2026-11-19T00:01:00Z
LIMITS = DecodeLimits(
    topic_prefix="smartplace",
    max_payload_bytes=4096,
    max_readings_per_payload=10,
    max_future_ns=300 * 10**9,
    max_age_ns=7 * 86400 * 10**9,
)
TOPIC = "smartplace/air_quality/aq-0001/reading"


def decode(payload: bytes | object, topic: str = TOPIC) -> tuple[list[str], int]:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    batch = decode_messages([RawMessage(topic, body, NOW_NS)], LIMITS)
    return [r.reason.value for r in batch.rejects], batch.accepted


@pytest.mark.parametrize(
    ("payload", "topic", "reason"),
    [
        (b"{", TOPIC, "malformed_json"),
        (b"NaN", TOPIC, "malformed_json"),
        (b"\xc3\x28", TOPIC, "malformed_json"),
        (b"5", TOPIC, "wrong_shape"),
        (b"[]", TOPIC, "wrong_shape"),
        (b"[5]", TOPIC, "wrong_shape"),
        (b"{}", TOPIC, "no_measurements"),
        (b'{"pm25_ugm3": 1e999}', TOPIC, "not_finite"),
        ({"pm25_ugm3": -0.1}, TOPIC, "out_of_range"),
        ({"pm25_ugm3": 1000.1}, TOPIC, "out_of_range"),
        ({"pm25_ugm3": 5, "humidity_pct": 101}, TOPIC, "out_of_range"),
        ({"pm25_ugm3": 5, "pressure_hpa": 101325}, TOPIC, "out_of_range"),
        ({"pm25_ugm3": "5"}, TOPIC, "wrong_type"),
        ({"pm25_ugm3": None, "no2_ugm3": [1]}, TOPIC, "wrong_type"),
        ({"pm25_ugm3": 5, "ts": "noon"}, TOPIC, "bad_timestamp"),
        ({"pm25_ugm3": 5, "ts": -1}, TOPIC, "bad_timestamp"),
        ({"pm25_ugm3": 5, "ts": True}, TOPIC, "bad_timestamp"),
        ({"pm25_ugm3": 5, "ts": NOW_NS // 10**9 + 301}, TOPIC, "future_timestamp"),
        ({"pm25_ugm3": 5, "ts": NOW_NS // 10**9 - 8 * 86400}, TOPIC, "stale_timestamp"),
        ({"pm25_ugm3": 5, "device_id": "aq-0002"}, TOPIC, "topic_device_mismatch"),
        ({"pm25_ugm3": 5, "device_id": "AQ 1"}, TOPIC, "bad_device_id"),
        ({"pm25_ugm3": 5}, "smartplace/air_quality/Aq,1/reading", "bad_device_id"),
        # Python's $ matches before a final newline; one in a tag would break line protocol.
        ({"pm25_ugm3": 5}, "smartplace/air_quality/aq-0001\n/reading", "bad_device_id"),
        ({"pm25_ugm3": 5}, "smartplace/weather/aq-0001/reading", "unknown_kind"),
        ({"pm25_ugm3": 5}, "smartplace/air_quality/aq-0001/config", "unknown_topic"),
        ({"pm25_ugm3": 5}, "smartplace/air_quality/aq-0001", "unknown_topic"),
        ({"pm25_ugm3": 5}, "elsewhere/air_quality/aq-0001/reading", "unknown_topic"),
        (b"[" + b"1," * 3000 + b"1]", TOPIC, "payload_too_large"),
        ([{"pm25_ugm3": 1}] * 11, TOPIC, "batch_too_long"),
    ],
)
def test_each_bad_payload_gets_its_reason(payload: object, topic: str, reason: str) -> None:
    assert decode(payload, topic) == ([reason], 0)


def test_a_good_reading_becomes_one_row_of_columns() -> None:
    body = {
        "ts": "2026-11-19T00:00:00.5Z",
        "pm25_ugm3": 7,
        "no2_ugm3": -2.5,
        "device_id": "aq-0001",
    }
    batch = decode_messages([RawMessage(TOPIC, orjson.dumps(body), NOW_NS)], LIMITS)
    [cols] = batch.columns
    assert cols.device_ids.tolist() == ["aq-0001"]
    assert cols.ts_ns.tolist() == [1_795_046_400_500_000_000]
    assert cols.field("pm25_ugm3").tolist() == [7.0]
    assert cols.field("no2_ugm3").tolist() == [-2.5]
    assert math.isnan(cols.field("o3_ugm3")[0])
    assert cols.qc_flags.tolist() == [0]


def test_a_reading_without_a_timestamp_takes_the_arrival_time_and_is_flagged() -> None:
    batch = decode_messages([RawMessage(TOPIC, b'{"pm10_ugm3": 3}', NOW_NS)], LIMITS)
    [cols] = batch.columns
    assert cols.ts_ns.tolist() == [NOW_NS]
    assert cols.qc_flags.tolist() == [int(QcFlag.TIMESTAMP_MISSING)]


def test_one_bad_element_of_an_array_does_not_spoil_the_others() -> None:
    reasons, accepted = decode([{"pm25_ugm3": 1}, {"pm25_ugm3": -9}, "x", {"pm25_ugm3": 3}])
    assert (reasons, accepted) == (["out_of_range", "wrong_shape"], 2)


def test_rejects_keep_an_excerpt_of_the_offending_element() -> None:
    batch = decode_messages(
        [RawMessage(TOPIC, orjson.dumps([{"pm25_ugm3": 1}, {"pm25_ugm3": -9}]), NOW_NS)], LIMITS
    )
    [reject] = batch.rejects
    assert reject.payload_excerpt == '{"pm25_ugm3":-9}'
    assert reject.device_id == "aq-0001"
    assert reject.detail.startswith("pm25_ugm3: Input should be greater than or equal to 0")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
reading_like = st.fixed_dictionaries(
    {},
    optional={
        "ts": st.integers(-10, 2 * 10**12) | st.text(max_size=30),
        "device_id": st.text(max_size=10) | st.just("aq-0001"),
        "pm25_ugm3": st.floats() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
        "no2_ugm3": st.floats(-10, 1100),
        "temperature_c": st.floats(-40, 60),
    },
)


ttn_like = st.fixed_dictionaries(
    {"end_device_ids": st.fixed_dictionaries({"device_id": st.sampled_from(["aq-0001", "x"])})},
    optional={
        "received_at": st.text(max_size=30) | st.just("2026-11-19T00:00:30.123456789Z"),
        "uplink_message": st.fixed_dictionaries(
            {},
            optional={
                "f_cnt": st.integers(-5, 2**33),
                "frm_payload": st.binary(max_size=24).map(lambda b: base64.b64encode(b).decode())
                | st.text(max_size=12),
                "decoded_payload": st.dictionaries(
                    st.sampled_from(["battery", "distance", "position", "x"]),
                    json_values,
                    max_size=4,
                ),
                "rx_metadata": st.lists(
                    st.fixed_dictionaries(
                        {}, optional={"rssi": st.floats(-200, 10), "snr": st.integers(-40, 40)}
                    ),
                    max_size=3,
                ),
                "version_ids": st.fixed_dictionaries(
                    {"model_id": st.sampled_from(["em310-udl", "vs133", "nope"])}
                ),
            },
        ),
    },
)
senml_like = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "bn": st.text(max_size=8),
            "bt": st.floats(allow_nan=False) | st.integers(-(2**40), 2**40),
            "n": st.sampled_from(["pm25", "no2", "", "x y", "count_in"]),
            "u": st.sampled_from(["ug/m3", "Cel", "%RH", "%EL", "lat", "A", ""]),
            "v": st.floats(allow_nan=False),
            "vs": st.text(max_size=5),
            "t": st.floats(-1e6, 1e6),
        },
    ),
    max_size=6,
)
TOPICS = [
    TOPIC,
    "smartplace/air_quality/x/reading",
    "smartplace/a/b/c/d",
    "smartplace/bin/bin-0001/status",
    "smartplace/footfall/ff-0001/senml",
    "smartplace/air_quality/aq-0001/senml",
    "v3/app@ttn/devices/aq-0001/up",
]


@settings(max_examples=400)
@given(
    topic=st.sampled_from(TOPICS) | st.text(max_size=60),
    payload=st.binary(max_size=300)
    | json_values.map(orjson.dumps)
    | reading_like.map(orjson.dumps)
    | st.lists(reading_like, max_size=12).map(orjson.dumps)
    | ttn_like.map(orjson.dumps)
    | senml_like.map(orjson.dumps),
)
def test_hostile_input_never_raises_and_every_message_is_accounted_for(
    topic: str, payload: bytes
) -> None:
    batch = decode_messages([RawMessage(topic, payload, NOW_NS)], LIMITS)
    assert all(isinstance(r.reason, RejectReason) for r in batch.rejects)
    if not topic.startswith("v3/"):  # a LoRaWAN counter's first totals are only a baseline
        assert batch.accepted + len(batch.rejects) >= 1
    for cols in batch.columns:
        assert all(math.isfinite(v) for v in cols.values.ravel().tolist() if v == v)
        assert set(cols.device_ids.tolist()) <= {"aq-0001", "bin-0001", "ff-0001"}
