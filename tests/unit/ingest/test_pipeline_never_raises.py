"""Property: whatever bytes arrive on whatever topic, the pipeline answers with readings and
rejects and never fails: no exception, and no internal_error reject (a stage that failed)."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from smartplace.config import IngestSettings, Settings
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas import KINDS, DeviceStatusReading
from smartplace.schemas.reasons import RejectReason

EXAMPLES = 10_000 if os.environ.get("CI") else 300
"""10,000 in CI (36 s on the 2-core machine); a few hundred locally, for a quick run."""
PREFIX = "smartplace"
RECEIVED_NS = 1_795_046_460 * 10**9  # 2026-11-19T00:01:00Z
FIELDS = sorted(
    {
        name
        for model in (*(spec.model for spec in KINDS.values()), DeviceStatusReading)
        for name in model.model_fields
    }
    | {
        "ts",
        "device_id",
        "sensordatavalues",
        "value_type",
        "value",
        "bn",
        "bt",
        "bu",
        "bv",
        "n",
        "t",
        "u",
        "v",
        "vs",
        "vb",
        "s",
        "bver",
        "uplink_message",
        "decoded_payload",
        "f_cnt",
        "frm_payload",
        "received_at",
        "end_device_ids",
        "kind",
        "site",
        "status",
    }
)

hostile_numbers = st.one_of(
    st.sampled_from([1e303, -1e303, 1.7976931348623157e308, 5e-324, -0.0, 2**53 + 1]),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, 0, -1, 1795046400, 1795046400123]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
hostile_text = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        [
            "2026-11-19T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "0000-01-01",
            "NaN",
            "1e999",
            "P1",
            "SDS_P2",
            "ug/m3",
            "Cel",
            "%RH",
            "urn:dev:aq:",
            "\x00",
            "aq-0001",
        ]
    ),
)
scalars = st.one_of(st.none(), st.booleans(), hostile_numbers, hostile_text)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=6))
# One level of structure: cheap to draw (hypothesis's own time is most of this test's), and
# deep nesting has its own strategy below.
json_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(keys, scalars, max_size=4),
    st.lists(st.dictionaries(keys, scalars, max_size=3), max_size=2),
)
records = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5)


def dumps(value: Any) -> bytes:
    """JSON text of ``value``; the standard library's, which writes integers of any size."""
    return json.dumps(value).encode()


def deep(depth: int, inner: str) -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(dumps),
    records.map(dumps),
    st.lists(records, min_size=1, max_size=3).map(dumps),
    st.builds(deep, st.integers(0, 1100), st.sampled_from(["", "{}", '{"pm25_ugm3":5}', "1"])),
    st.builds(
        lambda depth, record: dumps([record])[:-2] + b',"z":' + deep(depth, "") + b"}]",
        st.integers(200, 1030),
        records.filter(bool),
    ),
)
kinds = st.sampled_from([*KINDS, "device_status", "", "unknown"])
device_ids = st.one_of(
    st.sampled_from(["aq-0001", "ff-0001", "bin-0001", "a" * 65, "+", "#", "..", " aq", "aq\n"]),
    st.text(max_size=30),
)
topics = st.one_of(
    st.builds(
        lambda kind, device, leaf: f"{PREFIX}/{kind}/{device}/{leaf}",
        kinds,
        device_ids,
        st.sampled_from(["reading", "status", "senml"]),
    ),
    st.builds(lambda device: f"{PREFIX}/registry/{device}", device_ids),
    st.builds(
        lambda app, device: f"v3/{app}/devices/{device}/up", st.text(max_size=12), device_ids
    ),
    st.text(max_size=60),
    # As the wire reads a topic that is not UTF-8 (from a broker that does not check):
    # bad bytes become lone surrogates, which must still write as line protocol.
    st.binary(max_size=40).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
    st.builds(lambda device: f"{PREFIX}/air_quality/{device}\udcff/reading", device_ids),
)
messages = st.lists(
    st.builds(
        lambda topic, payload, offset_s, dup: RawMessage(
            topic, payload, RECEIVED_NS + offset_s * 10**9, mid=1, qos=1, redelivered=dup
        ),
        topics,
        payloads,
        st.integers(-86_400, 86_400),
        st.booleans(),
    ),
    min_size=1,
    max_size=3,
)
PIPELINE = Pipeline(Settings(ingest=IngestSettings(require_registered_devices=False)))
"""One pipeline for every example, as ingest has one for every batch: state from earlier
examples is part of what a batch meets (and a fresh one costs 10 ms to warm up)."""


@seed(20261202)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # the same examples on every machine: the seed alone decides them
)
@given(batch=messages)
def test_the_pipeline_never_raises_whatever_arrives(batch: list[RawMessage]) -> None:
    out = PIPELINE.process(batch)
    failed: list[Any] = [r for r in out.rejects if r.reason is RejectReason.INTERNAL_ERROR]
    assert failed == [], batch
    "\n".join([*out.raw.lines, *out.agg.lines]).encode()  # as InfluxClient.write sends them
    PIPELINE.tick(RECEIVED_NS + 10 * 86_400 * 10**9)
