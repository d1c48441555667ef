"""Every channel Milesight's own decoders know, in our profiles: a frame carrying any of
them keeps its readings. Facts (ids, types, lengths) are from the vendor's decoders in
Milesight-IoT/SensorDecoders (em-series/em310-udl/em310-udl-decoder.js,
vs-series/vs133/vs133-decoder.js), line numbers beside each case; the frames are ours."""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartplace.schemas.candidate import Candidate, Refusal
from smartplace.schemas.codecs import Channel, decode_frame
from smartplace.schemas.profiles import Profile, profile_named
from smartplace.schemas.ttn import TtnState, ttn_candidates

EM310 = profile_named("milesight-em310-udl")
VS133 = profile_named("milesight-vs133")
EM310_DISTANCE = "03822C01"  # 300 mm, after every case: it must survive
VS133_TOTAL = "03D248000000"  # line 1 total in 72

# (channel, frame, what it decodes to besides the trailing reading), em310-udl-decoder.js
EM310_CHANNELS: list[tuple[str, str, dict[str, Any]]] = [
    ("ff01 ipso :37", "FF0101", {}),
    ("ff09 hardware :42", "FF090110", {}),
    ("ff0a firmware :47", "FF0A0114", {}),
    ("ffff tsl :52", "FFFF0100", {}),
    ("ff16 serial :57", "FF166136D29178740000", {}),
    ("ff0f class :62", "FF0F00", {}),
    ("fffe reset :67", "FFFE01", {}),
    ("ff0b status :72", "FF0B01", {}),
    ("0175 battery :77", "017564", {"battery_pct": 100}),
    ("0382 distance :82", "0382A302", {"distance_mm": 675}),
    ("0400 position :87", "040001", {"tilt": True}),
    *(
        case
        for cid in ("FF", "FE")
        for case in (
            (f"{cid.lower()}10 reboot reply :108", f"{cid}10FF", {}),
            (f"{cid.lower()}02 collection interval :112", f"{cid}020A00", {}),
            (f"{cid.lower()}03 report interval :116", f"{cid}03B004", {}),
            (f"{cid.lower()}06 distance alarm :120", f"{cid}06812C01E80358020A00", {}),
        )
    ),
]

# vs133-decoder.js; ff0a, ffff, ff0f, fffe and ff0b are in the vendor's README table
# (vs-series/vs133/README.md) though its decoder reads ff0a as a reply and stops.
VS133_CHANNELS: list[tuple[str, str, dict[str, Any]]] = [
    ("ff01 ipso :44", "FF0101", {}),
    ("ff09 hardware :49", "FF090101", {}),
    ("ff1f firmware :54", "FF1F01020304", {}),
    ("ff16 serial :59", "FF166136D29178740000", {}),
    ("ff0a firmware (README)", "FF0A0114", {}),
    ("ffff tsl (README)", "FFFF0100", {}),
    ("ff0f class (README)", "FF0F00", {}),
    ("fffe reset (README)", "FFFE01", {}),
    ("ff0b status (README)", "FF0B01", {}),
    *(
        case
        for n in range(4)
        for case in (
            (
                f"{3 + 3 * n:02x}d2 line {n + 1} in :64",
                f"{3 + 3 * n:02X}D20A000000",
                {f"line_{n + 1}_total_in": 10},
            ),
            (
                f"{4 + 3 * n:02x}d2 line {n + 1} out :76",
                f"{4 + 3 * n:02X}D20B000000",
                {f"line_{n + 1}_total_out": 11},
            ),
            (
                f"{5 + 3 * n:02x}cc line {n + 1} period :88",
                f"{5 + 3 * n:02X}CC01000200",
                {f"line_{n + 1}_period_in": 1, f"line_{n + 1}_period_out": 2},
            ),
            (f"{0x11 + 3 * n:02x}d2 child {n + 1} in :70", f"{0x11 + 3 * n:02X}D201000000", {}),
            (f"{0x12 + 3 * n:02x}d2 child {n + 1} out :82", f"{0x12 + 3 * n:02X}D201000000", {}),
            (f"{0x13 + 3 * n:02x}cc child {n + 1} period :95", f"{0x13 + 3 * n:02X}CC01000100", {}),
        )
    ),
    (
        "0fe3 regions :102",
        "0FE302100709",
        {"region_1_count": 2, "region_2_count": 16, "region_3_count": 7, "region_4_count": 9},
    ),
    ("1de3 child regions :110", "1DE301010101", {}),
    ("10e4 dwell :118", "10E40109101121", {}),
    ("1ee4 child dwell :125", "1EE40109101121", {}),
    ("50fc occlusion alarm :132", "50FC000101", {}),
    *(
        (f"20ce history type {t:02x} :139,:339", f"20CE00F15365{t:02X}{tail}", {})
        for t, tail in [
            *((t, "01000000") for n in range(4) for t in (3 + 3 * n, 4 + 3 * n)),
            *((5 + 3 * n, "01000200") for n in range(4)),
            (0x0F, "01020304"),
            (0x10, "010A00"),
            (0x20, "010A00"),
            *((t, "01000000") for n in range(4) for t in (0x11 + 3 * n, 0x12 + 3 * n)),
            *((0x13 + 3 * n, "01000200") for n in range(4)),
            (0x1D, "01020304"),
            (0x1E, "010A00"),
            (0x3C, "010A00"),
        ]
    ),
    *(
        (f"{cid.lower()}{t} reply :164", f"{cid}{t}{data}", {})
        for cid in ("FF", "FE")
        for t, data in [
            ("03", "5802"),
            ("04", "01"),
            ("10", "FF"),
            ("11", "00F15365"),
            ("27", "FF"),
            ("40", "01"),
            ("42", "00"),
            ("43", "01"),
            ("44", "01"),
            ("51", "FF"),
            ("68", "01"),
            ("69", "01"),
            ("6A", "000A00"),
            ("6D", "FF"),
        ]
    ),
    *(
        (f"{cid.lower()}{t} ext reply :236", f"{cid}{t}{data}{'00' if cid == 'F8' else ''}", {})
        for cid in ("F8", "F9")
        for t, data in [
            ("84", "01B004"),
            ("85", "0103"),
            ("86", "03"),
            ("87", "02"),
            ("88", "0203"),
        ]
    ),
]


def channel_key(frame: str) -> tuple[int, int]:
    return int(frame[0:2], 16), int(frame[2:4], 16)


@pytest.mark.parametrize(
    ("name", "frame", "expected"), EM310_CHANNELS, ids=[c[0] for c in EM310_CHANNELS]
)
def test_em310_frame_with_any_vendor_channel_keeps_its_reading(
    name: str, frame: str, expected: dict[str, Any]
) -> None:
    alone = decode_frame(bytes.fromhex(frame), EM310.channels)
    assert (alone.values, alone.error, alone.dropped) == (expected, None, [])
    decoded = decode_frame(bytes.fromhex(frame + EM310_DISTANCE), EM310.channels)
    assert (decoded.error, decoded.dropped) == (None, [])
    assert decoded.values == {**expected, "distance_mm": 300}


@pytest.mark.parametrize(
    ("name", "frame", "expected"), VS133_CHANNELS, ids=[c[0] for c in VS133_CHANNELS]
)
def test_vs133_frame_with_any_vendor_channel_keeps_its_reading(
    name: str, frame: str, expected: dict[str, Any]
) -> None:
    alone = decode_frame(bytes.fromhex(frame), VS133.channels)
    assert (alone.values, alone.error, alone.dropped) == (expected, None, [])
    decoded = decode_frame(bytes.fromhex(frame + VS133_TOTAL), VS133.channels)
    assert (decoded.error, decoded.dropped) == (None, [])
    # the later line 1 total wins over a case's own, as in the vendor's decoder
    assert decoded.values == {**expected, "line_1_total_in": 72}


@pytest.mark.parametrize(
    ("profile", "cases"), [(EM310, EM310_CHANNELS), (VS133, VS133_CHANNELS)], ids=["em310", "vs133"]
)
def test_every_channel_of_the_profile_is_one_the_vendor_knows_and_is_tested(
    profile: Profile, cases: list[tuple[str, str, dict[str, Any]]]
) -> None:
    tested = {channel_key(frame) for _name, frame, _expected in cases}
    assert {(c.id, c.type) for c in profile.channels} == tested


def test_no_two_channels_of_a_profile_share_an_id_and_type() -> None:
    for profile in (EM310, VS133):
        keys = [(c.id, c.type) for c in profile.channels]
        assert len(keys) == len(set(keys)), profile.name


def test_fields_before_an_unknown_channel_are_kept_and_the_rest_is_named() -> None:
    decoded = decode_frame(bytes.fromhex("0175640382A302AB01040001"), EM310.channels)
    assert decoded.values == {"battery_pct": 100, "distance_mm": 675}
    assert decoded.error == "unknown channel 0xAB 0x01 at byte 7"


def test_a_channel_cut_short_keeps_nothing_of_itself() -> None:
    decoded = decode_frame(bytes.fromhex("0175640382A3"), EM310.channels)
    assert decoded.values == {"battery_pct": 100}
    assert decoded.error == "payload ends inside distance_mm at byte 5"


def test_a_history_record_of_unknown_type_stops_there() -> None:
    decoded = decode_frame(
        bytes.fromhex(VS133_TOTAL + "20CE00F1536577" + "01000000"), VS133.channels
    )
    assert decoded.values == {"line_1_total_in": 72}
    assert decoded.error == (
        "channel 0x20 0xCE at byte 6: history_type 119 is not a layout the profile knows"
    )


def test_an_unknown_position_loses_only_the_tilt() -> None:
    decoded = decode_frame(bytes.fromhex("0175640382A302040002"), EM310.channels)
    assert decoded.values == {"battery_pct": 100, "distance_mm": 675}
    assert decoded.dropped == ["tilt has no meaning for value 2"]


def test_channel_select_must_name_one_of_its_fields() -> None:
    with pytest.raises(ValueError, match="select 'kind' names none"):
        Channel(id=1, type=2, fields=[{"name": "x", "size": 1}], select="kind")  # type: ignore[list-item]


# -- through the uplink: what is kept lands, what is not is refused and says why ----------------


def uplink(device: str, f_cnt: int, at: str, frm: bytes, model_id: str) -> dict[str, Any]:
    return {
        "end_device_ids": {"device_id": device},
        "received_at": at,
        "uplink_message": {
            "session_key_id": "s1",
            "f_cnt": f_cnt,
            "frm_payload": base64.b64encode(frm).decode(),
            "version_ids": {"model_id": model_id},
            "rx_metadata": [{"rssi": -101}],
        },
    }


def split(
    decoded: list[Candidate | Refusal],
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    return (
        [(c.model.measurement, c.values) for c in decoded if isinstance(c, Candidate)],
        [(r.reason.value, r.detail) for r in decoded if isinstance(r, Refusal)],
    )


def test_em310_unknown_position_keeps_battery_and_distance_and_says_what_was_lost() -> None:
    frm = bytes.fromhex("01755C0382A302040002")
    readings, rejects = split(
        ttn_candidates(
            uplink("bin-1", 1, "2026-11-24T10:00:00Z", frm, "em310-udl"), b"", "a", TtnState()
        )
    )
    assert readings == [
        ("device_status", {"device_id": "bin-1", "rssi_dbm": -101, "battery_pct": 92}),
        ("bin", {"distance_mm": 675, "fill_pct": 50.0, "device_id": "bin-1"}),
    ]
    assert rejects == [
        (
            "undecodable_payload",
            "raw payload does not follow profile milesight-em310-udl: tilt has no meaning for "
            "value 2 (kept: battery_pct, distance_mm)",
        )
    ]


def test_em310_config_reply_beside_a_reading_keeps_the_reading() -> None:
    frm = bytes.fromhex("FF03B00401755C0382A302040000FE06812C01E80358020A00")
    readings, rejects = split(
        ttn_candidates(
            uplink("bin-1", 1, "2026-11-24T10:00:00Z", frm, "em310-udl"), b"", "a", TtnState()
        )
    )
    assert rejects == []
    assert readings[1] == (
        "bin",
        {"distance_mm": 675, "tilt": False, "fill_pct": 50.0, "device_id": "bin-1"},
    )


def lines(**registers: int) -> bytes:
    """VS133 channels: line_N_total_in/out (uint32) and line_N_period (two uint16)."""
    frame = b""
    for name, value in registers.items():
        _line, n, what, way = name.split("_")
        line = int(n)
        if what == "total":
            frame += struct.pack("<BBI", 3 * line + (0 if way == "in" else 1), 0xD2, value)
    periods = {int(k.split("_")[1]) for k in registers if "_period_" in k}
    for line in sorted(periods):
        frame += struct.pack(
            "<BBHH",
            3 * line + 2,
            0xCC,
            registers[f"line_{line}_period_in"],
            registers[f"line_{line}_period_out"],
        )
    return frame


def counter(state: TtnState, profile: Profile) -> Any:
    def frame(f_cnt: int, at: str, frm: bytes) -> tuple[list[dict[str, Any]], list[str]]:
        document = uplink("ff-1", f_cnt, at, frm, "vs133")
        readings, rejects = split(ttn_candidates(document, b"", "a", state))
        return [v for m, v in readings if m == "footfall"], [r for r, _d in rejects]

    state.profile_override = profile
    return frame


def test_vs133_all_four_lines_count_when_the_profile_counts_them() -> None:
    four = VS133.model_copy(update={"counted_lines": [1, 2, 3, 4]})
    frame = counter(TtnState(), four)
    registers = {f"line_{n}_total_{w}": 100 * n for n in range(1, 5) for w in ("in", "out")}
    assert frame(1, "2026-11-24T10:00:00Z", lines(**registers)) == ([], [])
    later = {name: value + int(name[5]) for name, value in registers.items()}  # line n: +n each way
    [reading], rejects = frame(2, "2026-11-24T10:10:00Z", lines(**later))
    assert rejects == []
    assert reading == {
        "device_id": "ff-1",
        "count_in": 10,
        "count_out": 10,
        "interval_s": 600,
        **later,
    }


def test_vs133_period_counts_are_used_directly() -> None:
    frame = counter(TtnState(), VS133)
    assert frame(1, "2026-11-24T10:00:00Z", lines(line_1_period_in=4, line_1_period_out=1)) == (
        [],
        [],
    )
    [reading], _ = frame(2, "2026-11-24T10:10:00Z", lines(line_1_period_in=7, line_1_period_out=3))
    assert reading == {"device_id": "ff-1", "count_in": 7, "count_out": 3, "interval_s": 600}


def test_vs133_period_counts_of_all_four_lines_are_summed_when_the_profile_counts_them() -> None:
    four = VS133.model_copy(update={"counted_lines": [1, 2, 3, 4]})
    frame = counter(TtnState(), four)
    periods = {f"line_{n}_period_{w}": n for n in range(1, 5) for w in ("in", "out")}
    frame(1, "2026-11-24T10:00:00Z", lines(**periods))
    later = {name: n * (2 if name.endswith("in") else 3) for name, n in periods.items()}
    [reading], rejects = frame(2, "2026-11-24T10:10:00Z", lines(**later))
    assert rejects == []
    # line n: 2n in, 3n out
    assert reading == {"device_id": "ff-1", "count_in": 20, "count_out": 30, "interval_s": 600}


def test_vs133_one_full_frame_keeps_every_lines_totals_and_every_region() -> None:
    """The default profile counts line 1 from its period counts; every line's totals and the
    regions are stored beside, and the other lines' period counts count for nothing."""
    frame = counter(TtnState(), VS133)
    registers = {f"line_{n}_total_{w}": 100 * n for n in range(1, 5) for w in ("in", "out")}
    registers |= {
        f"line_{n}_period_{w}": n + (w == "out") for n in range(1, 5) for w in ("in", "out")
    }
    frame(1, "2026-11-24T10:00:00Z", lines(**registers))
    later = {name: value + 1 for name, value in registers.items()}
    [reading], rejects = frame(
        2, "2026-11-24T10:10:00Z", lines(**later) + bytes.fromhex("0FE302100709")
    )
    assert rejects == []
    assert reading == {
        "device_id": "ff-1",
        "count_in": 2,
        "count_out": 3,
        "interval_s": 600,
        **{f"line_{n}_total_{w}": 100 * n + 1 for n in range(1, 5) for w in ("in", "out")},
        "region_1_count": 2,
        "region_2_count": 16,
        "region_3_count": 7,
        "region_4_count": 9,
        "occupancy": 34,
    }


def test_vs133_a_32_bit_wrap_is_counted_across_not_taken_for_a_reset() -> None:
    frame = counter(TtnState(), VS133)
    frame(1, "2026-11-24T10:00:00Z", lines(line_1_total_in=2**32 - 5, line_1_total_out=7))
    state_frame, _ = frame(2, "2026-11-24T10:10:00Z", lines(line_1_total_in=10, line_1_total_out=9))
    assert state_frame[0]["count_in"] == 15  # 5 up to the wrap and 10 after it
    assert state_frame[0]["count_out"] == 2


def test_vs133_a_fall_too_big_for_a_wrap_is_a_reset() -> None:
    state = TtnState()
    frame = counter(state, VS133)
    frame(1, "2026-11-24T10:00:00Z", lines(line_1_total_in=5000, line_1_total_out=4000))
    [reading], _ = frame(2, "2026-11-24T10:10:00Z", lines(line_1_total_in=12, line_1_total_out=3))
    assert (reading["count_in"], reading["count_out"], state.wraps) == (12, 3, 0)


def test_vs133_a_frame_too_close_or_too_old_never_moves_the_baseline() -> None:
    frame = counter(TtnState(), VS133)
    frame(1, "2026-11-24T10:00:00Z", lines(line_1_total_in=100, line_1_total_out=100))
    close, close_rejects = frame(
        2, "2026-11-24T10:00:00.400Z", lines(line_1_total_in=103, line_1_total_out=100)
    )
    old, old_rejects = frame(
        3, "2026-11-24T09:59:00Z", lines(line_1_total_in=90, line_1_total_out=90)
    )
    assert (close, close_rejects, old, old_rejects) == (
        [],
        ["out_of_order_frame"],
        [],
        ["out_of_order_frame"],
    )
    [reading], _ = frame(
        4, "2026-11-24T10:10:00Z", lines(line_1_total_in=110, line_1_total_out=104)
    )
    # the 3 crossings of the refused 0.4 s frame are counted here, from the first baseline
    assert (reading["count_in"], reading["count_out"], reading["interval_s"]) == (10, 4, 600)


def test_vs133_region_counts_are_kept_with_the_counts() -> None:
    frame = counter(TtnState(), VS133)
    frame(1, "2026-11-24T10:00:00Z", lines(line_1_total_in=1, line_1_total_out=1))
    [reading], _ = frame(
        2,
        "2026-11-24T10:10:00Z",
        lines(line_1_total_in=2, line_1_total_out=1) + bytes.fromhex("0FE302100709"),
    )
    assert {k: v for k, v in reading.items() if "region" in k or k == "occupancy"} == {
        "region_1_count": 2,
        "region_2_count": 16,
        "region_3_count": 7,
        "region_4_count": 9,
        "occupancy": 34,
    }


def test_a_later_unknown_value_voids_an_earlier_one_as_the_vendors_decoder_does() -> None:
    # the vendor's decoder keeps the last value it read: "unknown"; so no tilt at all
    decoded = decode_frame(bytes.fromhex("040001040002017564"), EM310.channels)
    assert decoded.values == {"battery_pct": 100}
    assert decoded.dropped == ["tilt has no meaning for value 2"]


def test_vs133_after_missed_uplinks_the_totals_rise_counts_them_and_their_backfill_is_refused() -> (
    None
):
    """Every 10 minutes a frame with totals and period counts (frame f: 10 + f in); f_cnt 4
    and 5 are lost on the way and backfilled later. Frame 6's period counts are its own 10
    minutes, its totals' rise since frame 3 holds 4 and 5 too: 45 counted there, and the
    backfilled frames refused. (Frame 6 counted 16 of 45, and 4 and 5 were refused: lost.)"""
    frame = counter(TtnState(), VS133)
    start = datetime(2026, 11, 24, 10, tzinfo=UTC)
    got = []
    for f_cnt in (1, 2, 3, 6, 4, 5, 7):
        at = (start + timedelta(minutes=10 * f_cnt)).isoformat().replace("+00:00", "Z")
        registers = lines(
            line_1_total_in=100 + sum(10 + f for f in range(2, f_cnt + 1)),
            line_1_total_out=0,
            line_1_period_in=10 + f_cnt if f_cnt > 1 else 0,
            line_1_period_out=0,
        )
        readings, rejects = frame(f_cnt, at, registers)
        got.append((f_cnt, [(r["count_in"], r["interval_s"]) for r in readings], rejects))
    assert got == [
        (1, [], []),
        (2, [(12, 600)], []),
        (3, [(13, 600)], []),
        (6, [(14 + 15 + 16, 1800)], []),
        (4, [], ["out_of_order_frame"]),
        (5, [], ["out_of_order_frame"]),
        (7, [(17, 600)], []),
    ]


def test_a_too_close_frame_of_period_counts_alone_says_they_are_not_counted() -> None:
    """The refusal said "its crossings are counted with the next frame": true of totals only."""
    state = TtnState()
    state.profile_override = VS133
    details = []
    for f_cnt, at in ((1, "2026-11-24T10:00:00Z"), (2, "2026-11-24T10:00:00.400Z")):
        registers = lines(line_1_period_in=5, line_1_period_out=0)
        document = uplink("ff-1", f_cnt, at, registers, "vs133")
        details += [
            r.detail for r in ttn_candidates(document, b"", "a", state) if isinstance(r, Refusal)
        ]
    assert details == [
        "counter frame 0.4 s after the last one: its period counts are not counted"
        " (no totals to carry them)"
    ]


@pytest.mark.parametrize(
    "decoded",
    [
        {"line_1": {"total_in": 2**62, "total_out": 100, "period_in": 0, "period_out": 0}},
        {"line_1": {"period_in": -5, "period_out": 0}},
        {"line_1": {"period_in": 70000, "period_out": 0}},
        {"line_1": {"period_in": True, "period_out": 0}},
    ],
    ids=["total-of-2**62", "period-of--5", "period-of-70000", "period-of-true"],
)
def test_vs133_a_register_beyond_its_bits_is_refused_and_leaves_the_baseline(
    decoded: dict[str, Any],
) -> None:
    """A decoded payload alone (no bytes to check it by): a total beyond 32 bits or a period
    count beyond 16 is refused before it moves the baseline. A total of 2**62 made the next
    genuine frame be refused (count_in < 0); a period of -5 moved it to 95, so the next
    frame counted 35 for 30."""
    state = TtnState()
    frame = counter(state, VS133)
    frame(1, "2026-11-24T10:00:00Z", lines(line_1_total_in=100, line_1_total_out=100))
    forged = uplink("ff-1", 2, "2026-11-24T10:05:00Z", b"", "vs133")
    del forged["uplink_message"]["frm_payload"]
    forged["uplink_message"]["decoded_payload"] = decoded
    readings, rejects = split(ttn_candidates(forged, b"", "a", state))
    assert ([m for m, _ in readings if m == "footfall"], [r for r, _ in rejects]) == (
        [],
        ["out_of_range"],
    )
    [reading], rejects = frame(
        3, "2026-11-24T10:10:00Z", lines(line_1_total_in=130, line_1_total_out=104)
    )
    assert (reading["count_in"], reading["count_out"], rejects) == (30, 4, [])
