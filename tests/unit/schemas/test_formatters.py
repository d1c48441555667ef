"""Payload-formatter output as network servers deliver it, and raw bytes checked against it.

Shapes: The Things Stack's device-repository formatter for the VS133 nests a line's
numbers (TheThingsNetwork/lorawan-devices vendor/milesight-iot/vs133.js builds
``line_1: {total_in, total_out, period_in, period_out}``); Milesight's own decoders
(Milesight-IoT/SensorDecoders, run by ChirpStack as its codec) name them flat
(``line_1_total_in``); the EM310-UDL's both name ``battery``, ``distance`` and
``position`` (``normal``, ``tilt`` or, for any other value, ``unknown``).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from smartplace.schemas.candidate import Candidate, Refusal
from smartplace.schemas.ttn import TtnState, ttn_candidates


def uplink(
    f_cnt: int,
    at: str,
    *,
    model_id: str,
    decoded: dict[str, Any] | None = None,
    frm: bytes | None = None,
    rx: bool = True,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "session_key_id": "s1",
        "f_cnt": f_cnt,
        "version_ids": {"model_id": model_id},
    }
    if decoded is not None:
        message["decoded_payload"] = decoded
    if frm is not None:
        message["frm_payload"] = base64.b64encode(frm).decode()
    if rx:
        message["rx_metadata"] = [{"rssi": -97, "snr": 3.5}]
    return {"end_device_ids": {"device_id": "dev-1"}, "received_at": at, "uplink_message": message}


def run(
    state: TtnState, document: dict[str, Any]
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str, str]]]:
    decoded = ttn_candidates(document, b"", "app@ttn", state, "dev-1")
    return (
        [(c.model.measurement, c.values) for c in decoded if isinstance(c, Candidate)],
        [(r.reason.value, r.path, r.detail) for r in decoded if isinstance(r, Refusal)],
    )


def footfall(readings: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [values for measurement, values in readings if measurement == "footfall"]


def test_tts_device_repository_vs133_nested_lines_are_counted() -> None:
    state = TtnState()
    first = {
        "line_1": {"total_in": 100, "total_out": 90},
        "line_2": {"total_in": 5, "total_out": 5},
    }
    later = {
        "line_1": {"total_in": 130, "total_out": 100},
        "line_2": {"total_in": 9, "total_out": 6},
    }
    run(state, uplink(1, "2026-11-24T10:00:00Z", model_id="vs133", decoded=first))
    readings, rejects = run(
        state, uplink(2, "2026-11-24T10:15:00Z", model_id="vs133", decoded=later)
    )
    assert rejects == []
    assert footfall(readings) == [
        {
            "device_id": "dev-1",
            "count_in": 30,
            "count_out": 10,
            "interval_s": 900,
            "line_1_total_in": 130,
            "line_1_total_out": 100,
            "line_2_total_in": 9,
            "line_2_total_out": 6,
        }
    ]


def test_tts_device_repository_vs133_period_counts_are_used() -> None:
    state = TtnState()
    run(
        state,
        uplink(
            1,
            "2026-11-24T10:00:00Z",
            model_id="vs133",
            decoded={"line_1": {"period_in": 1, "period_out": 1}},
        ),
    )
    readings, _ = run(
        state,
        uplink(
            2,
            "2026-11-24T10:10:00Z",
            model_id="vs133",
            decoded={"line_1": {"period_in": 6, "period_out": 2}},
        ),
    )
    assert footfall(readings) == [
        {"device_id": "dev-1", "count_in": 6, "count_out": 2, "interval_s": 600}
    ]


def test_milesight_flat_names_as_chirpstack_codecs_give_them() -> None:
    state = TtnState()
    run(
        state,
        uplink(
            1,
            "2026-11-24T10:00:00Z",
            model_id="vs133",
            decoded={"line_1_total_in": 7, "line_1_total_out": 3},
        ),
    )
    decoded = {
        "line_1_total_in": 9,
        "line_1_total_out": 4,
        "region_1_count": 2,
        "region_2_count": 0,
        "region_3_count": 1,
        "region_4_count": 0,
    }
    readings, rejects = run(
        state, uplink(2, "2026-11-24T10:05:00Z", model_id="vs133", decoded=decoded)
    )
    assert rejects == []
    [reading] = footfall(readings)
    assert (reading["count_in"], reading["count_out"], reading["occupancy"]) == (2, 1, 3)


def test_raw_bytes_that_agree_with_the_decoded_payload_land_from_the_bytes() -> None:
    frm = bytes.fromhex("01755C0382A302040001")
    decoded = {"battery": 92, "distance": 675, "position": "tilt"}
    readings, rejects = run(
        TtnState(),
        uplink(1, "2026-11-24T10:00:00Z", model_id="em310-udl", decoded=decoded, frm=frm),
    )
    assert rejects == []
    assert readings == [
        (
            "device_status",
            {"device_id": "dev-1", "rssi_dbm": -97, "snr_db": 3.5, "battery_pct": 92},
        ),
        ("bin", {"distance_mm": 675, "tilt": True, "fill_pct": 50.0, "device_id": "dev-1"}),
    ]


def test_a_decoded_payload_that_disagrees_with_the_bytes_is_refused_and_says_how() -> None:
    frm = bytes.fromhex("01755C0382A302040001")
    decoded = {"battery": 92, "distance": 700, "position": "normal"}
    readings, rejects = run(
        TtnState(),
        uplink(1, "2026-11-24T10:00:00Z", model_id="em310-udl", decoded=decoded, frm=frm),
    )
    assert readings == [("device_status", {"device_id": "dev-1", "rssi_dbm": -97, "snr_db": 3.5})]
    assert rejects == [
        (
            "payload_mismatch",
            "uplink_message.decoded_payload",
            "decoded payload disagrees with the raw bytes through profile milesight-em310-udl: "
            "distance_mm: bytes say 675, decoded payload 700; tilt: bytes say True, decoded payload False",
        )
    ]


def test_vs133_nested_totals_are_checked_against_the_bytes() -> None:
    frm = struct.pack("<BBIBBI", 0x03, 0xD2, 72, 0x04, 0xD2, 200)
    decoded = {"line_1": {"total_in": 72, "total_out": 201}}
    _readings, rejects = run(
        TtnState(), uplink(1, "2026-11-24T10:00:00Z", model_id="vs133", decoded=decoded, frm=frm)
    )
    assert [(reason, detail.split(": ", 1)[1]) for reason, _path, detail in rejects] == [
        ("payload_mismatch", "line_1_total_out: bytes say 200, decoded payload 201")
    ]


def test_an_unknown_position_from_the_formatter_loses_only_the_tilt() -> None:
    decoded = {"battery": 80, "distance": 675, "position": "unknown"}
    readings, rejects = run(
        TtnState(), uplink(1, "2026-11-24T10:00:00Z", model_id="em310-udl", decoded=decoded)
    )
    assert readings[1] == ("bin", {"distance_mm": 675, "fill_pct": 50.0, "device_id": "dev-1"})
    assert rejects == [
        (
            "undecodable_payload",
            "uplink_message.decoded_payload",
            "decoded payload: position has no meaning for 'unknown'",
        )
    ]


def test_an_uplink_that_yields_nothing_is_refused_and_says_why() -> None:
    # firmware and serial number only, and no gateway metadata: no reading, no status
    frm = bytes.fromhex("FF0A0114FF166136D29178740000")
    readings, rejects = run(
        TtnState(), uplink(3, "2026-11-24T10:00:00Z", model_id="em310-udl", frm=frm, rx=False)
    )
    assert readings == []
    assert rejects == [
        (
            "no_measurements",
            "uplink_message",
            "uplink f_cnt=3 gave no reading and no link quality (a counter's first frame is only "
            "its baseline; attributes and command replies hold none)",
        )
    ]


def test_a_formatter_output_naming_nothing_we_know_is_refused() -> None:
    readings, rejects = run(
        TtnState(),
        uplink(
            4, "2026-11-24T10:00:00Z", model_id="em310-udl", decoded={"temperature": 4}, rx=False
        ),
    )
    assert readings == []
    assert [r[0] for r in rejects] == ["no_measurements"]
