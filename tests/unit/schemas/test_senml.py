"""SenML packs from RFC 8428 itself, resolved and mapped exactly."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas.senml import ResolvedRecord, SenmlError, resolve

SAMPLES = Path(__file__).parents[2] / "fixtures" / "samples"
URN = "urn:dev:ow:10e2073a01080063"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def resolved_form(records: list[ResolvedRecord]) -> list[dict[str, object]]:
    return [{"n": r.name, "u": r.unit, "t": r.time_s, "v": r.value} for r in records]


def test_section_5_1_3_resolves_to_the_rfcs_section_5_1_4() -> None:
    records = resolve(
        orjson.loads(sample("senml_rfc8428_5.1.3_multiple_measurements.json")), now_s=0
    )
    # RFC 8428 section 5.1.4, record for record.
    assert resolved_form(records) == [
        {"n": URN, "u": "%RH", "t": 1.320067464e09, "v": 20},
        {"n": URN, "u": "lon", "t": 1.320067464e09, "v": 24.30621},
        {"n": URN, "u": "lat", "t": 1.320067464e09, "v": 60.07965},
        {"n": URN, "u": "%RH", "t": 1.320067524e09, "v": 20.3},
        {"n": URN, "u": "lon", "t": 1.320067524e09, "v": 24.30622},
        {"n": URN, "u": "lat", "t": 1.320067524e09, "v": 60.07965},
        {"n": URN, "u": "%RH", "t": 1.320067584e09, "v": 20.7},
        {"n": URN, "u": "lon", "t": 1.320067584e09, "v": 24.30623},
        {"n": URN, "u": "lat", "t": 1.320067584e09, "v": 60.07966},
        {"n": URN, "u": "%EL", "t": 1.320067614e09, "v": 98},
        {"n": URN, "u": "%RH", "t": 1.320067644e09, "v": 21.2},
        {"n": URN, "u": "lon", "t": 1.320067644e09, "v": 24.30628},
        {"n": URN, "u": "lat", "t": 1.320067644e09, "v": 60.07967},
    ]


def test_section_5_1_2_resolves_base_name_time_and_unit() -> None:
    records = resolve(
        orjson.loads(sample("senml_rfc8428_5.1.2_multiple_datapoints_relative_time.json")), now_s=0
    )
    base = "urn:dev:ow:10e2073a0108006:"  # one digit shorter than 5.1.3's, as printed in the RFC
    assert [(r.name, r.unit, r.value) for r in records] == [
        (base + "voltage", "V", 120.1),
        *[(base + "current", "A", v) for v in (1.2, 1.3, 1.4, 1.5, 1.6, 1.7)],
    ]
    assert [round(r.time_s - 1.276020076001e09, 6) for r in records] == [0, -5, -4, -3, -2, -1, 0]


def test_times_below_2_to_the_28_are_relative_to_now() -> None:
    [record] = resolve([{"n": "x", "t": -5, "v": 1}], now_s=1_800_000_000)
    assert record.time_s == 1_799_999_995


@pytest.mark.parametrize(
    ("pack", "message"),
    [
        ({"n": "x", "v": 1}, "non-empty JSON array"),
        ([{"n": "x"}], "needs a value"),
        ([{"n": "x", "v": 1, "vs": "a"}], "has v, vs"),
        ([{"bver": 11, "n": "x", "v": 1}], "newer than 10"),
        ([{"n": "x y", "v": 1}], "characters SenML forbids"),
        ([{"n": "x", "v": 1, "foo_": 1}], "must-understand"),
        ([{"n": "x", "v": "1"}], "v must be a number"),
    ],
)
def test_broken_packs_say_what_is_wrong(pack: object, message: str) -> None:
    with pytest.raises(SenmlError, match=message):
        resolve(pack, now_s=0)


LIMITS = DecodeLimits("smartplace", 65536, 100, 300 * 10**9, 7 * 86400 * 10**9)


def decode_sample(
    name: str, topic: str, received_s: float
) -> tuple[list[tuple[str, dict[str, object]]], list[tuple[str, str]]]:
    batch = decode_messages([RawMessage(topic, sample(name), int(received_s * 1e9))], LIMITS)
    readings = []
    for cols in batch.columns:
        for i in range(len(cols)):
            values = {
                f: v for f, v in zip(cols.fields, cols.values[i].tolist(), strict=True) if v == v
            }
            readings.append((cols.measurement, {"ts_ns": int(cols.ts_ns[i]), **values}))
    return readings, [(r.reason.value, r.field_path) for r in batch.rejects]


def test_section_5_1_3_on_an_air_quality_topic_keeps_position_and_battery_and_refuses_humidity_alone() -> (
    None
):
    readings, rejects = decode_sample(
        "senml_rfc8428_5.1.3_multiple_measurements.json",
        "smartplace/air_quality/aq-0001/senml",
        received_s=1.320067700e09,
    )
    assert readings == [
        (
            "device_status",
            {"ts_ns": 1_320_067_464_000_000_000, "latitude": 60.07965, "longitude": 24.30621},
        ),
        (
            "device_status",
            {"ts_ns": 1_320_067_524_000_000_000, "latitude": 60.07965, "longitude": 24.30622},
        ),
        (
            "device_status",
            {"ts_ns": 1_320_067_584_000_000_000, "latitude": 60.07966, "longitude": 24.30623},
        ),
        ("device_status", {"ts_ns": 1_320_067_614_000_000_000, "battery_pct": 98.0}),
        (
            "device_status",
            {"ts_ns": 1_320_067_644_000_000_000, "latitude": 60.07967, "longitude": 24.30628},
        ),
    ]
    # Relative humidity alone is no air quality reading: each time's humidity is refused, with why.
    assert rejects == [("no_measurements", "")] * 4


def test_section_5_1_2_measures_nothing_we_store_and_says_so_per_record() -> None:
    readings, rejects = decode_sample(
        "senml_rfc8428_5.1.2_multiple_datapoints_relative_time.json",
        "smartplace/air_quality/aq-0001/senml",
        received_s=1.276020080e09,
    )
    assert readings == []
    assert rejects == [("unknown_measurement", f"[{i}]") for i in range(7)]


def test_senml_names_map_onto_our_fields_with_unit_conversion() -> None:
    pack = [
        {"bn": "urn:dev:mac:0024befffe804ff1:", "bt": 1.8e9, "n": "pm25", "u": "ug/m3", "v": 7.5},
        {"n": "no2", "u": "ug/m3", "v": 21},
        {"n": "pressure", "u": "Pa", "v": 101325},
        {"u": "Cel", "v": 11.5},
    ]
    batch = decode_messages(
        [RawMessage("smartplace/air_quality/aq-0001/senml", orjson.dumps(pack), int(1.8e18))],
        LIMITS,
    )
    assert batch.rejects == []
    [cols] = batch.columns
    assert cols.ts_ns.tolist() == [1_800_000_000_000_000_000]
    assert cols.field("pm25_ugm3").tolist() == [7.5]
    assert cols.field("no2_ugm3").tolist() == [21.0]
    assert cols.field("pressure_hpa").tolist() == [1013.25]
    assert cols.field("temperature_c").tolist() == [11.5]
