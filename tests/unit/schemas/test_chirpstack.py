"""ChirpStack v4 uplink events through the same profiles as The Things Stack's.

The event's JSON follows ChirpStack's integration.UplinkEvent (chirpstack/chirpstack
api/proto/integration/integration.proto) as its MQTT integration marshals it:
camelCase names, every field emitted, ``data`` in base64, ``object`` from the codec."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from smartplace.devices.directory import DeviceDirectory
from smartplace.devices.model import DeviceRecord
from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas.chirpstack import device_for
from smartplace.schemas.topics import parse_topic
from smartplace.schemas.ttn import TtnState

LIMITS = DecodeLimits("smartplace", 65536, 100, 300 * 10**9, 7 * 86400 * 10**9)
APP = "6c3a4e54-0b6e-4a3b-9f65-1f1c0f7b9a11"
EUI = "24e124713b042345"
RECEIVED = 1_795_515_300 * 10**9  # 2026-11-24T10:15:00Z


def event(
    f_cnt: int,
    time: str,
    *,
    eui: str = EUI,
    name: str = "bin-0042",
    profile: str = "milesight-em310-udl",
    data: bytes | None = None,
    obj: dict[str, Any] | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "deduplicationId": "3b5f2a8e-6c1d-4a8e-9d0b-7c2f1e0a9b31",
        "time": time,
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "Council",
            "applicationId": APP,
            "applicationName": "bins",
            "deviceProfileId": "0b1f6d3e-8f5c-4f3a-b1d2-9c8e7f6a5b4c",
            "deviceProfileName": profile,
            "deviceName": name,
            "devEui": eui,
            "tags": {},
        },
        "devAddr": "01fa2b3c",
        "adr": True,
        "dr": 5,
        "fCnt": f_cnt,
        "fPort": 85,
        "confirmed": False,
        "data": base64.b64encode(data).decode() if data is not None else "",
        "rxInfo": [
            {
                "gatewayId": "0016c001ff10a235",
                "uplinkId": 1,
                "rssi": -103,
                "snr": 4.25,
                "channel": 2,
            },
            {
                "gatewayId": "0016c001ff10a236",
                "uplinkId": 2,
                "rssi": -97,
                "snr": -1.5,
                "channel": 2,
            },
        ],
        "txInfo": {"frequency": 868100000},
    }
    if obj is not None:
        body["object"] = obj
    return orjson.dumps(body)


def decode(
    payload: bytes, state: TtnState, eui: str = EUI, directory: DeviceDirectory | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str | None, str]]]:
    topic = f"application/{APP}/device/{eui}/event/up"
    batch = decode_messages([RawMessage(topic, payload, RECEIVED)], LIMITS, state, directory)
    readings = []
    for cols in batch.columns:
        for i in range(len(cols)):
            values: dict[str, Any] = {
                "device_id": str(cols.device_ids[i]),
                "ts_ns": int(cols.ts_ns[i]),
            }
            values |= {
                f: v for f, v in zip(cols.fields, cols.values[i].tolist(), strict=True) if v == v
            }
            readings.append((cols.measurement, values))
    return readings, [(r.reason.value, r.device_id, r.field_path) for r in batch.rejects]


def test_the_topic_names_application_and_dev_eui() -> None:
    topic = parse_topic("smartplace", f"application/{APP}/device/24E124713B042345/event/up")
    assert topic is not None
    assert (topic.leaf, topic.application, topic.device_id) == ("chirpstack", APP, EUI)
    assert parse_topic("smartplace", f"application/{APP}/device/{EUI}/event/join") is None


def test_em310_event_with_bytes_and_codec_object_lands_under_the_device_name() -> None:
    frm = bytes.fromhex("01755C0382A302040000")
    payload = event(
        7,
        "2026-11-24T10:14:59.250Z",
        data=frm,
        obj={"battery": 92, "distance": 675, "position": "normal"},
    )
    readings, rejects = decode(payload, TtnState())
    assert rejects == []
    assert readings == [
        (
            "device_status",
            {
                "device_id": "bin-0042",
                "ts_ns": 1_795_515_299_250_000_000,
                "rssi_dbm": -97.0,
                "snr_db": 4.25,
                "battery_pct": 92.0,
            },
        ),
        (
            "bin",
            {
                "device_id": "bin-0042",
                "ts_ns": 1_795_515_299_250_000_000,
                "fill_pct": 50.0,
                "distance_mm": 675.0,
                "tilt": False,
            },
        ),
    ]


def test_vs133_events_count_through_the_same_profile() -> None:
    state = TtnState()
    totals = [
        struct.pack("<BBIBBI", 0x03, 0xD2, i, 0x04, 0xD2, o) for i, o in ((100, 90), (125, 97))
    ]
    decode(event(1, "2026-11-24T10:00:00Z", name="ff-0042", profile="vs133", data=totals[0]), state)
    readings, rejects = decode(
        event(2, "2026-11-24T10:15:00Z", name="ff-0042", profile="vs133", data=totals[1]), state
    )
    assert rejects == []
    assert readings[-1] == (
        "footfall",
        {
            "device_id": "ff-0042",
            "ts_ns": RECEIVED,
            "count_in": 25,
            "count_out": 7,
            "interval_s": 900,
            "line_1_total_in": 125,
            "line_1_total_out": 97,
        },
    )


def test_the_registry_finds_a_device_by_its_dev_eui() -> None:
    record = DeviceRecord(device_id="bin-0007", kind="bin", metadata={"dev_eui": EUI.upper()})
    assert device_for(EUI, "whatever-chirpstack-calls-it", {"bin-0007": record}) == "bin-0007"
    directory = DeviceDirectory()
    directory.apply("bin-0007", record.model_dump_json().encode())
    state = TtnState(devices=directory.devices)
    payload = event(1, "2026-11-24T10:15:00Z", name="Bin by the library", obj={"distance": 1100})
    readings, _ = decode(payload, state, directory=directory)
    assert {values["device_id"] for _m, values in readings} == {"bin-0007"}


def test_a_name_the_registry_gives_another_dev_eui_is_not_taken() -> None:
    devices = {
        "bin-0042": DeviceRecord(
            device_id="bin-0042", kind="bin", metadata={"dev_eui": "0000000000000001"}
        )
    }
    assert device_for(EUI, "bin-0042", devices) == EUI


def test_a_duplicate_event_is_refused() -> None:
    state = TtnState()
    payload = event(9, "2026-11-24T10:15:00Z", obj={"distance": 700})
    decode(payload, state)
    _readings, rejects = decode(payload, state)
    assert rejects == [("duplicate_frame", "bin-0042", "fCnt")]


def test_an_event_naming_another_dev_eui_is_refused_and_touches_nothing() -> None:
    state = TtnState()
    forged = event(1, "2026-11-24T10:15:00Z", eui="24e1247100000001", obj={"distance": 700})
    readings, rejects = decode(forged, state)  # on EUI's topic, naming another DevEUI
    assert (readings, rejects) == ([], [("topic_device_mismatch", "bin-0042", "deviceInfo.devEui")])
    genuine = event(1, "2026-11-24T10:15:00Z", eui="24e1247100000001", obj={"distance": 700})
    readings, rejects = decode(genuine, state, eui="24e1247100000001")
    assert rejects == []
    assert [m for m, _v in readings] == ["device_status", "bin"]


def test_not_an_event_is_wrong_shape() -> None:
    _readings, rejects = decode(b'{"fCnt": 1}', TtnState())
    assert rejects == [("wrong_shape", EUI, "deviceInfo")]


def test_a_frame_counter_past_32_bits_is_refused_and_counts_no_gap() -> None:
    state = TtnState()
    decode(event(1, "2026-11-24T10:00:00Z", data=b"\x01\x75\x64"), state)
    body = event(0, "2026-11-24T10:01:00Z", data=b"\x01\x75\x63")
    payload = body.replace(b'"fCnt":0', b'"fCnt":9223372036854775813')
    readings, rejects = decode(payload, state)
    assert (readings, rejects) == ([], [("wrong_shape", "bin-0042", "fCnt")])
    assert state.take_frame_events() == []
