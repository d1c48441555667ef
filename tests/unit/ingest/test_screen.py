"""The screen (columns without pydantic) gives exactly what pydantic gives, row for row."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartplace.ingest.decode import messages as decode_module
from smartplace.ingest.decode.messages import DecodedBatch, DecodeLimits, decode_messages
from smartplace.ingest.decode.screen import screen_for, screen_rows
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas import KINDS

NOW_NS = 1_795_046_460 * 10**9  # 2026-11-19T00:01:00Z
NOW_S = NOW_NS // 10**9
LIMITS = DecodeLimits(
    topic_prefix="smartplace",
    max_payload_bytes=1 << 20,
    max_readings_per_payload=50,
    max_future_ns=300 * 10**9,
    max_age_ns=7 * 86400 * 10**9,
)
TOPICS = {
    "air_quality": "smartplace/air_quality/aq-0001/reading",
    "footfall": "smartplace/footfall/ff-0001/reading",
    "bin": "smartplace/bin/bin-0001/reading",
}


def test_every_reading_model_has_a_screen() -> None:
    # A model given a validator without a column rule in ingest/decode/screen.py would lose it here.
    assert {kind: screen_for(spec.model) is not None for kind, spec in KINDS.items()} == {
        kind: True for kind in KINDS
    }


def test_a_flush_of_good_readings_becomes_columns_with_their_exact_values() -> None:
    payload = [
        {"ts": NOW_S - 60.5, "no2_ugm3": 20.25, "pm25_ugm3": 3},
        {"ts": NOW_S - 30, "no2_ugm3": -5, "device_id": "aq-0001"},
        {"ts": NOW_S - 10.000000001, "o3_ugm3": 500.0, "temperature_c": None},
    ]
    batch = _decode("air_quality", payload)
    assert batch.rejects == []
    (columns,) = batch.columns
    assert columns.ts_ns.tolist() == [
        (NOW_S - 60) * 10**9 - 500_000_000,
        (NOW_S - 30) * 10**9,
        round((NOW_S - 10.000000001) * 10**9),
    ]
    assert columns.device_ids.tolist() == ["aq-0001"] * 3
    nan = -1.0  # stands for NaN in these comparisons
    for name, expected in {
        "no2_ugm3": [20.25, -5.0, nan],
        "pm25_ugm3": [3.0, nan, nan],
        "o3_ugm3": [nan, nan, 500.0],
        "temperature_c": [nan, nan, nan],
    }.items():
        assert np.nan_to_num(columns.field(name), nan=nan).tolist() == expected, name
    assert columns.qc_flags.tolist() == [0, 0, 0]


def test_rows_the_screen_cannot_vouch_for_get_pydantics_reasons_in_place() -> None:
    payload = [
        {"ts": NOW_S - 3.0, "no2_ugm3": 1.0},
        {"ts": NOW_S - 2.0, "no2_ugm3": 1000.5},  # out of range
        {"ts": "2026-11-19T00:00:59+00:00", "no2_ugm3": 2.0},  # pydantic reads this shape
        {"ts": NOW_S - 1.0, "no2_ugm3": True},  # a bool is no number
        {"ts": NOW_S + 301.0, "no2_ugm3": 3.0},  # from the future
        {"ts": NOW_S, "temperature_c": 12.0},  # no pollutant
    ]
    batch = _decode("air_quality", payload)
    assert [(r.reason.value, r.field_path) for r in batch.rejects] == [
        ("out_of_range", "[1].no2_ugm3"),
        ("wrong_type", "[3].no2_ugm3"),
        ("future_timestamp", "[4].ts"),
        ("no_measurements", "[5]"),
    ]
    (columns,) = batch.columns
    assert columns.field("no2_ugm3").tolist() == [1.0, 2.0]  # arrival order kept
    assert columns.ts_ns.tolist() == [(NOW_S - 3) * 10**9, (NOW_S - 1) * 10**9]


def test_each_reading_is_judged_against_its_own_message() -> None:
    # One pass screens the whole batch: device and arrival time must still be each row's own.
    late = NOW_S + 100.0  # in the future for a message that arrived 250 s ago
    batch = _decode_batch(
        "air_quality",
        [
            ("0001", 0, [{"ts": late, "no2_ugm3": 1.0, "device_id": "aq-0001"}]),
            ("0002", -250 * 10**9, {"ts": late, "no2_ugm3": 2.0}),
            (
                "0002",
                -250 * 10**9,
                [{"ts": NOW_S - 300.0, "no2_ugm3": 3.0, "device_id": "aq-0001"}],
            ),
            ("0001", 0, {"ts": NOW_S - 1.0, "no2_ugm3": 4.0, "device_id": "aq-0001"}),
        ],
    )
    assert [(r.reason.value, r.device_id, r.field_path) for r in batch.rejects] == [
        ("future_timestamp", "aq-0002", "ts"),
        ("topic_device_mismatch", "aq-0002", "[0].device_id"),
    ]
    (columns,) = batch.columns
    assert columns.device_ids.tolist() == ["aq-0001", "aq-0001"]
    assert columns.field("no2_ugm3").tolist() == [1.0, 4.0]
    assert columns.received_ns.tolist() == [NOW_NS, NOW_NS]


def test_footfall_counts_past_twenty_people_a_second_are_refused() -> None:
    payload = [
        {"ts": NOW_S, "count_in": 600, "count_out": 600, "interval_s": 60},
        {"ts": NOW_S, "count_in": 600, "count_out": 601, "interval_s": 60},
    ]
    batch = _decode("footfall", payload)
    assert [(r.reason.value, r.field_path) for r in batch.rejects] == [("out_of_range", "[1]")]
    assert batch.columns[0].field("count_in").tolist() == [600.0]


# (field, low, high, type, required) per kind: mostly good values, so rows reach the screen,
# with edges and hostile values mixed in.
FIELDS: dict[str, list[tuple[str, float, float, str, bool]]] = {
    "air_quality": [
        ("pm1_ugm3", 0, 1000, "float", False),
        ("pm25_ugm3", 0, 1000, "float", False),
        ("pm10_ugm3", 0, 1000, "float", False),
        ("no2_ugm3", -5, 1000, "float", False),
        ("o3_ugm3", -5, 500, "float", False),
        ("temperature_c", -30, 50, "float", False),
        ("humidity_pct", 0, 100, "float", False),
        ("pressure_hpa", 870, 1090, "float", False),
    ],
    "footfall": [
        ("count_in", 0, 1500, "int", True),
        ("count_out", 0, 1500, "int", True),
        ("interval_s", 0, 120, "int", True),
        ("occupancy", 0, 1_000_000, "int", False),
    ],
    "bin": [
        ("fill_pct", 0, 100, "float", True),
        ("distance_mm", 0, 10_000, "float", False),
        ("temperature_c", -40, 150, "float", False),
        ("tilt", 0, 1, "bool", False),
        ("fire_alarm", 0, 1, "bool", False),
    ],
}
hostile = (
    st.booleans()
    | st.text(max_size=2)
    | st.lists(st.integers(), max_size=1)
    | st.integers(2**62, 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
)


def _value(low: float, high: float, kind: str) -> st.SearchStrategy[Any]:
    if kind == "bool":
        good: st.SearchStrategy[Any] = st.booleans()
        edge: st.SearchStrategy[Any] = st.sampled_from([0, 1, 1.0])
    elif kind == "int":
        good = st.integers(int(low), int(high))
        edge = st.sampled_from([int(low) - 1, int(high) + 1, 1_000_000, 1_000_001]) | good.map(
            float  # a whole number written 5.0 is no int to strict pydantic
        )
    else:
        good = st.floats(low, high) | st.integers(int(low), int(high))
        edge = st.sampled_from(
            [low, high, float(low), float(high), low - 1e-9, high + 1e-9, low - 1, high + 1]
        )
    return st.one_of(good, good, good, good, edge, st.none(), hostile)


def _iso(seconds: float, millis: bool) -> str:
    text = datetime.fromtimestamp(seconds, UTC).isoformat(
        timespec="milliseconds" if millis else "seconds"
    )
    return text.replace("+00:00", "Z")


timestamps = st.one_of(
    st.floats(NOW_S - 600, NOW_S + 200),
    st.builds(_iso, st.floats(NOW_S - 8 * 86400, NOW_S + 400), st.booleans()),
    st.builds(_iso, st.floats(NOW_S - 600, NOW_S + 200), st.booleans()),
    st.floats(NOW_S - 600, NOW_S + 200),
    st.floats(NOW_S - 8 * 86400, NOW_S + 400),
    st.integers(NOW_S - 8 * 86400, NOW_S + 400),
    st.sampled_from(
        [
            NOW_S - 7 * 86400,
            float(NOW_S - 7 * 86400),
            NOW_S - 7 * 86400 - 1e-9,
            NOW_S + 300,
            float(NOW_S + 300),
            NOW_S + 300.000001,
            NOW_S * 1000,
            float(NOW_S * 1000),
            -1,
            True,
            None,
            "2026-11-19T00:00:00Z",
            "2026-11-19T00:00:00.000+00:00",
            "2026-11-19T00:00:00.5Z",
            "2026-11-18T24:00:00Z",
            "noon",
            4e9,
            3.9999999e9,
        ]
    ),
)


def _items(kind: str) -> st.SearchStrategy[Any]:
    fields = {name: _value(low, high, t) for name, low, high, t, _required in FIELDS[kind]}
    required = {name for name, *_rest, needed in FIELDS[kind] if needed}
    always = required | ({"no2_ugm3"} if kind == "air_quality" else set())  # a pollutant, mostly
    row = st.fixed_dictionaries(
        {"ts": timestamps, **{name: fields[name] for name in always}},
        optional={
            **{name: s for name, s in fields.items() if name not in always},
            "device_id": st.sampled_from(
                ["aq-0001", "aq-0002", "ff-0001", "bin-0001", "AQ", None, 7]
            ),
            "other": hostile,
        },
    )
    odd = st.fixed_dictionaries(
        {},
        optional={
            "ts": timestamps,
            **fields,
            "sensordatavalues": st.just([{"value_type": "P2", "value": "4.5"}]),
        },
    ) | st.sampled_from([5, "x", None, [], {}])
    return st.one_of(row, row, row, row, row, odd)


@settings(max_examples=1000, deadline=None)
@given(data=st.data(), kind=st.sampled_from(sorted(TOPICS)))
def test_screened_and_validated_decoding_agree_on_hostile_batches(
    data: st.DataObject, kind: str
) -> None:
    # Several devices' messages, arriving at different times: lone readings and arrays.
    messages = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(["0001", "0002"]),
                st.sampled_from([0, -250 * 10**9, 120 * 10**9]),
                _items(kind) | st.lists(_items(kind), min_size=1, max_size=12),
            ),
            min_size=1,
            max_size=4,
        )
    )
    screened = _decode_batch(kind, messages)
    with pytest.MonkeyPatch.context() as patch:  # the ordinary way for every reading
        patch.setattr(decode_module, "screen_for", lambda _model: None)
        validated = _decode_batch(kind, messages)
    assert _described(screened) == _described(validated)


def _decode(kind: str, *payloads: list[Any]) -> DecodedBatch:
    return _decode_batch(kind, [("0001", 0, payload) for payload in payloads])


def _decode_batch(kind: str, messages: list[tuple[str, int, Any]]) -> DecodedBatch:
    raw = [
        RawMessage(
            TOPICS[kind].replace("0001", device),
            json.dumps(payload).encode(),  # any int, where orjson stops at 64 bits
            NOW_NS + arrival_offset_ns,
            mid=n,
        )
        for n, (device, arrival_offset_ns, payload) in enumerate(messages)
    ]
    return decode_messages(raw, LIMITS)


def _described(batch: DecodedBatch) -> tuple[object, ...]:
    columns = [
        (
            c.measurement,
            c.kind,
            c.fields,
            c.device_ids.tolist(),
            c.ts_ns.tolist(),
            np.where(np.isnan(c.values), -1e308, c.values).tolist(),  # NaN == NaN here
            c.qc_flags.tolist(),
            None if c.sites is None else c.sites.tolist(),
            None if c.received_ns is None else c.received_ns.tolist(),
        )
        for c in batch.columns
    ]
    rejects = [
        (r.reason, r.detail, r.topic, r.device_id, r.payload_excerpt, r.field_path)
        for r in batch.rejects
    ]
    return columns, rejects


def test_the_screen_takes_rows_at_the_exact_edges_of_every_range() -> None:
    screen = screen_for(KINDS["air_quality"].model)
    assert screen is not None
    earliest, latest = NOW_NS - 7 * 86400 * 10**9, NOW_NS + 300 * 10**9
    rows = [
        {"ts": float(NOW_S - 7 * 86400), "pm25_ugm3": 0, "no2_ugm3": -5.0},
        {"ts": NOW_S + 300, "pm25_ugm3": 1000.0, "o3_ugm3": 500, "pressure_hpa": 870},
        {"ts": NOW_S, "pm10_ugm3": 0.0, "humidity_pct": 100.0, "temperature_c": -30},
    ]
    screened = screen_rows(
        rows, screen, np.full(3, "aq-0001"), np.full(3, earliest), np.full(3, latest)
    )
    assert screened is not None
    assert screened.rows.tolist() == [0, 1, 2]
    assert screened.ts_ns.tolist() == [earliest, latest, NOW_NS]
