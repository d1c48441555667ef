"""Sensor.Community's public payloads, as published, on an air quality reading topic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.receive.message import RawMessage

SAMPLES = Path(__file__).parents[2] / "fixtures" / "samples"
LIMITS = DecodeLimits("smartplace", 65536, 100, 300 * 10**9, 7 * 86400 * 10**9)
TOPIC = "smartplace/air_quality/sc-1234567/reading"


def decode(
    name: str, received_s: int
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    payload = (SAMPLES / name).read_bytes()
    batch = decode_messages([RawMessage(TOPIC, payload, received_s * 10**9)], LIMITS)
    readings = []
    for cols in batch.columns:
        for i in range(len(cols)):
            values = {
                f: v for f, v in zip(cols.fields, cols.values[i].tolist(), strict=True) if v == v
            }
            readings.append(
                (
                    cols.measurement,
                    {"ts_ns": int(cols.ts_ns[i]), "qc": int(cols.qc_flags[i]), **values},
                )
            )
    return readings, [(r.reason.value, r.field_path) for r in batch.rejects]


def test_firmware_push_maps_sds_p1_to_pm10_and_p2_to_pm25_and_signal_to_status() -> None:
    readings, rejects = decode(
        "sensorcommunity_firmware_push_sds011_dht22.json", received_s=1_795_000_000
    )
    assert rejects == []
    # No timestamp in a push: it takes the arrival time and is flagged (qc 1).
    assert readings == [
        ("device_status", {"ts_ns": 1_795_000_000 * 10**9, "qc": 1, "rssi_dbm": -86.0}),
        (
            "air_quality",
            {
                "ts_ns": 1_795_000_000 * 10**9,
                "qc": 1,
                "pm25_ugm3": 2.25,
                "pm10_ugm3": 4.05,
                "temperature_c": 28.9,
                "humidity_pct": 37.1,
            },
        ),
    ]


def test_api_record_with_a_naive_timestamp_is_read_as_utc() -> None:
    # "2019-04-22 19:48:54", no zone -> 1555962534 s
    readings, rejects = decode(
        "sensorcommunity_api_v1_reading_sds011.json", received_s=1_555_962_600
    )
    assert rejects == []
    assert readings == [
        (
            "air_quality",
            {"ts_ns": 1_555_962_534 * 10**9, "qc": 0, "pm25_ugm3": 0.8, "pm10_ugm3": 3.87},
        ),
    ]


def test_api_list_keeps_pm_records_and_refuses_temperature_humidity_records_alone() -> None:
    readings, rejects = decode(
        "sensorcommunity_api_v1_data_sds011_dht22_list.json", received_s=1_556_157_300
    )
    assert readings == [
        (
            "air_quality",
            {"ts_ns": 1_556_157_072 * 10**9, "qc": 0, "pm25_ugm3": 16.23, "pm10_ugm3": 19.13},
        ),
        (
            "air_quality",
            {"ts_ns": 1_556_157_220 * 10**9, "qc": 0, "pm25_ugm3": 16.8, "pm10_ugm3": 18.4},
        ),
    ]
    # The three DHT22 records carry only temperature and humidity: no pollutant, and they say so.
    assert rejects == [
        ("no_measurements", "[1]"),
        ("no_measurements", "[2]"),
        ("no_measurements", "[4]"),
    ]
