"""The Things Stack uplinks: the public samples, and both Milesight codecs on frames
built from the vendors' payload tables, with every expected value worked out by hand."""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest

from smartplace.devices.model import DeviceRecord
from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas.candidate import Candidate, Refusal
from smartplace.schemas.codecs import CodecError, decode_channels
from smartplace.schemas.profiles import profile_named
from smartplace.schemas.ttn import TtnState, ttn_candidates

SAMPLES = Path(__file__).parents[2] / "fixtures" / "samples"
LIMITS = DecodeLimits("smartplace", 65536, 100, 300 * 10**9, 7 * 86400 * 10**9)
EM310 = profile_named("milesight-em310-udl")
VS133 = profile_named("milesight-vs133")


def decode(
    topic: str, payload: bytes, received_ns: int, state: TtnState | None = None
) -> tuple[list[tuple[str, str, dict[str, Any]]], list[tuple[str, str]]]:
    batch = decode_messages([RawMessage(topic, payload, received_ns)], LIMITS, state or TtnState())
    readings = []
    for cols in batch.columns:
        for i in range(len(cols)):
            values: dict[str, Any] = {
                "ts_ns": int(cols.ts_ns[i]),
                "device_id": str(cols.device_ids[i]),
            }
            values |= {
                f: v for f, v in zip(cols.fields, cols.values[i].tolist(), strict=True) if v == v
            }
            readings.append((cols.measurement, cols.kind, values))
    return readings, [(r.reason.value, r.field_path) for r in batch.rejects]


# -- the public samples ---------------------------------------------------------------------


def test_docs_uplink_gives_link_quality_at_full_precision_and_refuses_the_unprofiled_payload() -> (
    None
):
    payload = (SAMPLES / "ttn_v3_uplink_docs_example.json").read_bytes()
    readings, rejects = decode("v3/app1@ttn/devices/dev1/up", payload, 1_581_520_600 * 10**9)
    assert readings == [
        (
            "device_status",
            "unknown",
            {
                "ts_ns": 1_581_520_546_014_773_143,
                "device_id": "dev1",
                "rssi_dbm": -35.0,
                "snr_db": 5.0,
            },
        )
    ]
    # {"temperature": 1.0, "luminosity": 0.64} from a device with no profile: refused, and why.
    assert rejects == [("unknown_profile", "uplink_message")]


def test_mqtt_docs_uplink_without_received_at_takes_the_gateway_time() -> None:
    payload = (SAMPLES / "ttn_v3_uplink_mqtt_docs_example_fcnt0.json").read_bytes()
    readings, rejects = decode("v3/app1@tenant1/devices/dev1/up", payload, 1_548_767_000 * 10**9)
    assert readings == [
        (
            "device_status",
            "unknown",
            {
                "ts_ns": 1_548_766_954_981_000_000,
                "device_id": "dev1",
                "rssi_dbm": -35.0,
                "snr_db": 5.0,
            },
        )
    ]
    assert rejects == [("unknown_profile", "uplink_message")]


def test_mqtt_docs_uplink_through_a_binary_profile_is_undecodable_and_says_where() -> None:
    # frm_payload is the ASCII text "Temperature = 0.0": no Milesight channel starts with 'T' 'e'.
    payload = (SAMPLES / "ttn_v3_uplink_mqtt_docs_example_fcnt0.json").read_bytes()
    state = TtnState(profiles_by_application={"app1": "milesight-em310-udl"})
    batch = decode_messages(
        [RawMessage("v3/app1@tenant1/devices/dev1/up", payload, 1_548_767_000 * 10**9)],
        LIMITS,
        state,
    )
    [reject] = batch.rejects
    assert (reject.reason.value, reject.field_path) == (
        "undecodable_payload",
        "uplink_message.frm_payload",
    )
    assert "unknown channel 0x54 0x65 at byte 0 (kept: nothing)" in reject.detail


def test_a_frame_seen_twice_is_a_duplicate() -> None:
    payload = (SAMPLES / "ttn_v3_uplink_mqtt_docs_example_fcnt0.json").read_bytes()
    state = TtnState()
    decode("v3/app1@tenant1/devices/dev1/up", payload, 1_548_767_000 * 10**9, state)
    readings, rejects = decode(
        "v3/app1@tenant1/devices/dev1/up", payload, 1_548_767_001 * 10**9, state
    )
    assert (readings, rejects) == ([], [("duplicate_frame", "uplink_message.f_cnt")])


def test_topic_and_envelope_must_name_the_same_device() -> None:
    payload = (SAMPLES / "ttn_v3_uplink_docs_example.json").read_bytes()
    readings, rejects = decode("v3/app1@ttn/devices/dev2/up", payload, 1_581_520_600 * 10**9)
    assert readings == []
    assert rejects[0] == ("topic_device_mismatch", "end_device_ids.device_id")


# -- Milesight EM310-UDL (bins) -------------------------------------------------------------


def test_em310_vendor_example_decodes_to_battery_distance_and_tilt() -> None:
    # Vendor example: 01 75 5C | 03 82 44 08 | 04 00 01 -> battery 0x5C = 92 %,
    # distance 0x0844 = 2116 mm (little-endian), position 1 = tilt.
    assert decode_channels(bytes.fromhex("01755C03824408040001"), EM310.channels) == {
        "battery_pct": 92,
        "distance_mm": 2116,
        "tilt": True,
    }


def test_em310_reads_past_its_join_attributes() -> None:
    frame = bytes.fromhex(
        "FF0101"  # ipso version
        "FF090110"  # hardware 1.10
        "FF0A0114"  # firmware
        "FF16"
        "6136D29178740000"  # serial number, 8 bytes
        "FF0F00"  # class A
        "017564"  # battery 100 %
        "03822C01"  # 0x012C = 300 mm
    )
    assert decode_channels(frame, EM310.channels) == {"battery_pct": 100, "distance_mm": 300}


@pytest.mark.parametrize(
    ("hex_frame", "message"),
    [
        ("0175", "ends inside battery_pct at byte 2"),
        ("01755C0382", "ends inside distance_mm at byte 5"),
        ("01", "inside a channel header at byte 0"),
        ("01755CAB01", "unknown channel 0xAB 0x01 at byte 3"),
        ("040002", "tilt has no meaning for value 2"),
    ],
)
def test_em310_broken_frames_say_where(hex_frame: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode_channels(bytes.fromhex(hex_frame), EM310.channels)


def uplink(
    device: str,
    f_cnt: int,
    received_at: str,
    *,
    frm: bytes | None = None,
    decoded: dict[str, Any] | None = None,
    model_id: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "session_key_id": "AXA50tHUGUucuzS/bCGMNw==",
        "f_port": 85,
        "f_cnt": f_cnt,
        "rx_metadata": [{"rssi": -110, "snr": -7.5}, {"rssi": -96, "snr": -9.25}],
        "received_at": received_at,
    }
    if frm is not None:
        message["frm_payload"] = base64.b64encode(frm).decode()
    if decoded is not None:
        message["decoded_payload"] = decoded
    if model_id:
        message["version_ids"] = {"brand_id": "milesight-iot", "model_id": model_id}
    return {
        "end_device_ids": {"device_id": device},
        "received_at": received_at,
        "uplink_message": message,
    }


def split(decoded: list[Candidate | Refusal]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    return (
        [(c.model.measurement, c.values) for c in decoded if isinstance(c, Candidate)],
        [r.reason.value for r in decoded if isinstance(r, Refusal)],
    )


def test_em310_uplink_becomes_status_and_a_bin_fill_from_the_bins_depth() -> None:
    document = uplink(
        "bin-0007",
        12,
        "2026-11-24T10:00:00Z",
        frm=bytes.fromhex("01755C03824408040000"),
        model_id="em310-udl",
    )
    # A 2.5 m deep skip with a 250 mm blind zone: (2500 - 2116) / (2500 - 250) = 17.0666... %
    skip = TtnState(parameters={"empty_distance_mm": 2500, "full_distance_mm": 250})
    candidates = ttn_candidates(document, b"", "bins@ttn", skip)
    assert split(candidates) == (
        [
            # best RSSI and best SNR over the two gateways, which need not be the same gateway
            (
                "device_status",
                {"device_id": "bin-0007", "rssi_dbm": -96, "snr_db": -7.5, "battery_pct": 92},
            ),
            (
                "bin",
                {"distance_mm": 2116, "tilt": False, "fill_pct": 17.07, "device_id": "bin-0007"},
            ),
        ],
        [],
    )
    assert candidates[1].envelope_ts_ns == 1_795_514_400_000_000_000  # type: ignore[union-attr]


def test_em310_decoded_payload_maps_vendor_names_and_values() -> None:
    document = uplink(
        "bin-0007",
        13,
        "2026-11-24T10:00:00Z",
        decoded={"battery": 80, "distance": 675, "position": "tilt"},
        model_id="em310-udl",
    )
    # default bin: empty at 1100 mm, full at 250 mm: (1100 - 675) / 850 = 50 %
    statuses, rejects = split(ttn_candidates(document, b"", "bins@ttn", TtnState()))
    assert rejects == []
    assert statuses[1] == (
        "bin",
        {"distance_mm": 675, "tilt": True, "fill_pct": 50.0, "device_id": "bin-0007"},
    )


# -- Milesight VS133 (footfall) -------------------------------------------------------------


def totals(line_1_in: int, line_1_out: int) -> bytes:
    return struct.pack("<BBI", 0x03, 0xD2, line_1_in) + struct.pack("<BBI", 0x04, 0xD2, line_1_out)


def test_vs133_vendor_examples_decode() -> None:
    frame = bytes.fromhex("03D24800000004D2C80000000CD2B41400000DD28D1A0000")
    assert decode_channels(frame, VS133.channels) == {
        "line_1_total_in": 72,  # 0x48
        "line_1_total_out": 200,  # 0xC8
        "line_4_total_in": 5300,  # 0x14B4
        "line_4_total_out": 6797,  # 0x1A8D
    }
    assert decode_channels(bytes.fromhex("0ECC05000700"), VS133.channels) == {
        "line_4_period_in": 5,
        "line_4_period_out": 7,
    }


def test_vs133_cumulative_totals_become_interval_counts_and_a_fall_is_a_reset() -> None:
    state = TtnState()

    def frame(
        f_cnt: int, at: str, payload: bytes
    ) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
        return split(
            ttn_candidates(
                uplink("ff-0001", f_cnt, at, frm=payload, model_id="vs133"),
                b"",
                "footfall@ttn",
                state,
            )
        )

    first, _ = frame(1, "2026-11-24T10:00:00Z", totals(72, 200))
    assert [m for m, _v in first] == ["device_status"]  # the first totals are only the baseline
    second, _ = frame(2, "2026-11-24T10:15:00Z", totals(80, 203) + bytes.fromhex("0FE302100709"))
    assert second[1] == (
        "footfall",
        {
            "device_id": "ff-0001",
            "count_in": 8,
            "count_out": 3,
            "interval_s": 900,
            "line_1_total_in": 80,
            "line_1_total_out": 203,
            "region_1_count": 2,
            "region_2_count": 16,
            "region_3_count": 7,
            "region_4_count": 9,
            "occupancy": 34,
        },
    )
    after_reset, _ = frame(3, "2026-11-24T10:30:00Z", totals(5, 2))  # power cycled: counting from 0
    assert after_reset[1][1] | {} == {
        "device_id": "ff-0001",
        "count_in": 5,
        "count_out": 2,
        "interval_s": 900,
        "line_1_total_in": 5,
        "line_1_total_out": 2,
    }
    _late, rejects = frame(4, "2026-11-24T10:20:00Z", totals(9, 9))
    assert rejects == ["out_of_order_frame"]


def test_vs133_uplink_lands_through_decode() -> None:
    state = TtnState()
    received = 1_795_515_300 * 10**9  # 10:15Z
    for f_cnt, at, payload in (
        (1, "2026-11-24T10:00:00Z", totals(100, 90)),
        (2, "2026-11-24T10:15:00Z", totals(130, 100)),
    ):
        readings, rejects = decode(
            "v3/footfall@ttn/devices/ff-0001/up",
            orjson.dumps(uplink("ff-0001", f_cnt, at, frm=payload, model_id="vs133")),
            received,
            state,
        )
    assert rejects == []
    assert readings[-1] == (
        "footfall",
        "footfall",
        {
            "ts_ns": 1_795_515_300_000_000_000,
            "device_id": "ff-0001",
            "count_in": 30,
            "count_out": 10,
            "interval_s": 900,
            "line_1_total_in": 130,
            "line_1_total_out": 100,
        },
    )


@pytest.mark.parametrize("f_cnt", [2**32, 2**63 + 5, -1])
def test_a_frame_counter_no_lorawan_device_can_send_is_refused_and_counts_no_gap(
    f_cnt: int,
) -> None:
    # FCnt is 32 bits (TTS: uint32 f_cnt). A hostile 2**63 + 5 once made 2**63 + 3 missed
    # frames, more than the delivery ledger's integer fields can hold.
    state = TtnState()
    first = orjson.dumps(uplink("dev1", 1, "2026-11-24T10:00:00Z", frm=b"\x01\x75\x64"))
    decode("v3/app1@ttn/devices/dev1/up", first, 1_795_514_400 * 10**9, state)
    body = uplink("dev1", 0, "2026-11-24T10:01:00Z", frm=b"\x01\x75\x63")
    payload = str(orjson.dumps(body), "utf-8").replace('"f_cnt":0', f'"f_cnt":{f_cnt}').encode()
    readings, rejects = decode("v3/app1@ttn/devices/dev1/up", payload, 1_795_514_460 * 10**9, state)
    assert (readings, rejects) == ([], [("wrong_shape", "uplink_message.f_cnt")])
    assert state.take_frame_events() == []


def test_an_uplink_whose_profile_gives_another_kind_than_the_device_is_registered_as_is_refused() -> (
    None
):
    """aq-1 is registered as air quality; an uplink for it naming the VS133 stored footfall
    under it. A native topic's kind is checked against the registry; so is a profile's."""
    state = TtnState(devices={"aq-1": DeviceRecord(device_id="aq-1", kind="air_quality")})
    totals = struct.pack("<BBIBBI", 0x03, 0xD2, 1000, 0x04, 0xD2, 500)
    document = uplink("aq-1", 7, "2026-11-24T10:00:00Z", frm=totals, model_id="vs133")
    decoded, rejects = split(ttn_candidates(document, b"", "a", state))
    assert (decoded, rejects) == ([], ["topic_device_mismatch"])
