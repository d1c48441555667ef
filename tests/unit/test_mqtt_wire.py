"""The MQTT 5 subscriber's wire format, checked against paho's own encoder and hostile bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.mqtt_wire import (
    CONNACK,
    DISCONNECT,
    PINGRESP,
    SUBACK,
    Control,
    ProtocolError,
    Subscription,
    connect_packet,
    disconnect_packet,
    parse_connack,
    parse_packets,
    puback_packets,
    subscribe_packet,
    varint,
)

LIMIT = 1 << 20
PAYLOAD_LIMIT = 1000


def publish(
    topic: str,
    payload: bytes,
    qos: int = 1,
    packet_id: int = 7,
    dup: bool = False,
    retain: bool = False,
) -> bytes:
    """A PUBLISH as the broker sends it, with a property (message expiry) to skip."""
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.MessageExpiryInterval = 60
    name = topic.encode()
    body = struct.pack(">H", len(name)) + name
    if qos:
        body += struct.pack(">H", packet_id)
    body += properties.pack() + payload  # type: ignore[no-untyped-call]
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    return bytes([first]) + varint(len(body)) + body


def parse(data: bytes, max_messages: int = 1_000) -> tuple[list[RawMessage], list[Control], int]:
    messages: list[RawMessage] = []
    controls: list[Control] = []
    used, skip = parse_packets(data, 123, 4, LIMIT, PAYLOAD_LIMIT, messages, controls, max_messages)
    assert skip == 0
    return messages, controls, used


def test_a_publish_comes_out_with_its_topic_payload_packet_id_qos_dup_and_connection() -> None:
    data = publish("smartplace/air_quality/aq-001/reading", b'{"no2_ugm3": 21.5}', dup=True)
    messages, controls, used = parse(data)
    assert messages == [
        RawMessage(
            "smartplace/air_quality/aq-001/reading",
            b'{"no2_ugm3": 21.5}',
            123,
            mid=7,
            qos=1,
            redelivered=True,
            connection=4,
        )
    ]
    assert (controls, used) == ([], len(data))


def test_a_qos0_publish_has_no_packet_id() -> None:
    messages, _, _ = parse(publish("t/x", b"abc", qos=0))
    assert (messages[0].mid, messages[0].qos, messages[0].payload) == (0, 0, b"abc")


def test_a_packet_cut_anywhere_waits_for_the_rest_and_then_parses_whole() -> None:
    whole = publish("a/b", b"x" * 300, packet_id=9) + publish("a/c", b"y", packet_id=10)
    for cut in range(len(whole)):
        messages, _, used = parse(whole[:cut])
        rest, _, used_rest = parse(whole[used:])
        assert [m.mid for m in messages + rest] == [9, 10]
        assert used + used_rest == len(whole)


def test_parsing_stops_at_max_messages_leaving_the_rest_unconsumed() -> None:
    first, second = publish("a/b", b"1", packet_id=1), publish("a/b", b"2", packet_id=2)
    messages, _, used = parse(first + second, max_messages=1)
    assert [m.payload for m in messages] == [b"1"]
    assert used == len(first)


def test_pubacks_are_four_bytes_each_in_order() -> None:
    assert puback_packets([1, 258, 65535]) == bytes.fromhex("40020001400201024002ffff")


def test_connect_carries_the_session_and_flow_control_we_rely_on() -> None:
    packet = connect_packet(
        "ingest-1",
        30,
        ("ingest", "secret"),
        clean_start=False,
        session_expiry_s=604_800,
        receive_maximum=10_000,
        maximum_packet_size=LIMIT,
    )
    assert packet[0] == 0x10
    body = packet[2 if packet[1] < 0x80 else 3 :]
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0xC0  # user name and password, clean start off
    assert struct.unpack(">H", body[8:10]) == (30,)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    _, length = properties.unpack(body[10:])  # type: ignore[no-untyped-call]
    assert (
        properties.SessionExpiryInterval,
        properties.ReceiveMaximum,
        properties.MaximumPacketSize,
    ) == (604_800, 10_000, LIMIT)
    assert body[10 + length :] == b"\x00\x08ingest-1\x00\x06ingest\x00\x06secret"


def test_subscribe_asks_qos1_for_each_filter_with_its_retain_handling() -> None:
    subscriptions = [Subscription("p/#"), Subscription("v3/+/devices/+/up", retain_handling=2)]
    assert subscribe_packet(1, subscriptions) == (
        b"\x82\x1d\x00\x01\x00" + b"\x00\x03p/#\x01" + b"\x00\x11v3/+/devices/+/up\x21"
    )


def test_the_retain_flag_comes_out_with_the_message() -> None:
    messages, _, _ = parse(publish("a/b", b"1", retain=True) + publish("a/b", b"2"))
    assert [m.retained for m in messages] == [True, False]


def test_a_disconnect_carries_its_reason_code() -> None:
    assert disconnect_packet(0x95) == b"\xe0\x01\x95"


def test_connack_properties_are_read() -> None:
    properties = Properties(PacketTypes.CONNACK)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 300
    properties.ReceiveMaximum = 20
    properties.MaximumPacketSize = 4096
    properties.ServerKeepAlive = 0
    properties.AssignedClientIdentifier = "auto-1"
    body = b"\x00\x00" + properties.pack()  # type: ignore[no-untyped-call]
    connack = bytes([0x20]) + varint(len(body)) + body
    parsed = parse_connack(connack + b"\xd0\x00", LIMIT)
    assert parsed is not None
    control, used = parsed
    assert used == len(connack)
    assert (
        control.session_expiry_s,
        control.receive_maximum,
        control.maximum_packet_size,
        control.server_keepalive_s,
        control.assigned_client_id,
    ) == (300, 20, 4096, 0, "auto-1")


def test_a_connack_cut_short_waits_and_anything_before_it_is_a_protocol_error() -> None:
    assert parse_connack(b"\x20\x03\x00", LIMIT) is None
    with pytest.raises(ProtocolError) as refused:
        parse_connack(publish("a/b", b"x") + b"\x20\x03\x00\x00\x00", LIMIT)
    assert refused.value.code == 0x82


def test_an_oversized_publish_comes_out_cut_and_says_how_much_is_left_to_skip() -> None:
    payload = b"z" * (LIMIT + 10)
    whole = publish("p/k/d/reading", payload, packet_id=5)
    header = len(whole) - len(payload)
    messages: list[RawMessage] = []
    controls: list[Control] = []
    # Too little yet: nothing is taken.
    assert parse_packets(
        whole[: header + 10], 1, 2, LIMIT, PAYLOAD_LIMIT, messages, controls, 10
    ) == (0, 0)
    used, skip = parse_packets(whole, 1, 2, LIMIT, PAYLOAD_LIMIT, messages, controls, 10)
    assert (used, skip) == (header + PAYLOAD_LIMIT + 1, len(whole) - header - PAYLOAD_LIMIT - 1)
    assert [(m.topic, m.payload, m.mid, m.qos) for m in messages] == [
        ("p/k/d/reading", b"z" * (PAYLOAD_LIMIT + 1), 5, 1)
    ]


def test_a_publish_oversized_by_its_header_alone_keeps_its_whole_payload() -> None:
    topic = "t/" + "x" * 78
    data = publish(topic, b"p" * 30, packet_id=1) + publish("a/b", b"next", packet_id=2)
    messages: list[RawMessage] = []
    # An 80-byte topic and a 30-byte payload: over a 100-byte limit, the header within it.
    used, skip = parse_packets(data, 1, 1, 100, 50, messages, [], 10)
    assert (used, skip) == (len(data), 0)
    assert [(m.topic, m.payload) for m in messages] == [(topic, b"p" * 30), ("a/b", b"next")]


def test_a_publish_whose_header_alone_is_over_the_limit_is_packet_too_large() -> None:
    data = publish("t/" + "x" * 198, b"p", packet_id=1)
    with pytest.raises(ProtocolError) as refused:
        parse_packets(data, 1, 1, 100, 50, [], [], 10)
    assert refused.value.code == 0x95


def test_a_qos2_publish_is_a_protocol_error_never_a_puback() -> None:
    with pytest.raises(ProtocolError) as refused:
        parse(publish("a/b", b"x", qos=2))
    assert refused.value.code == 0x82


def test_a_suback_lists_each_filters_code() -> None:
    _, controls, _ = parse(b"\x90\x05\x00\x03\x00\x01\x87")
    assert (controls[0].packet_id, controls[0].codes) == (3, (1, 0x87))


def test_a_suback_granting_qos2_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse(b"\x90\x04\x00\x01\x00\x02")


def test_control_packets_are_read_with_their_reasons() -> None:
    connack_ok = b"\x20\x06\x01\x00\x03\x13\x00\x0a"  # session present, server keep-alive 10
    connack_refused = b"\x20\x03\x00\x86\x00"
    suback = b"\x90\x05\x00\x01\x00\x01\x87"  # one granted (QoS 1), one not authorised
    pingresp, disconnect = b"\xd0\x00", b"\xe0\x02\x8b\x00"
    _, controls, _ = parse(connack_ok + connack_refused + suback + pingresp + disconnect)
    assert [c.kind for c in controls] == [CONNACK, CONNACK, SUBACK, PINGRESP, DISCONNECT]
    ok, refused, sub, _, gone = controls
    assert (ok.session_present, ok.server_keepalive_s, ok.reason and ok.reason.is_failure) == (
        True,
        10,
        False,
    )
    assert str(refused.reason) == "Bad user name or password"
    assert (sub.packet_id, str(sub.reason)) == (1, "Not authorized")
    assert str(gone.reason) == "Server shutting down"


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\xff\xff\xff\xff\x01",  # a length of five bytes
        b"\x36\x05\x00\x01a\x00\x00",  # QoS 3
        b"\x32\x03\x00\x09a",  # topic longer than the packet
        b"\x32\x04\x00\x01a\x00",  # packet id cut short
        b"\x32\x07\x00\x01a\x00\x01\x09\x00",  # properties longer than the packet
        b"\x30\x03\x00\x00\x00",  # empty topic (an alias we never allowed)
        b"\x20\x01\x00",  # CONNACK without a reason code
        b"\x20\x03\x00\x00\x05",  # CONNACK with properties cut short
        b"\x20\x04\x00\x00\x01\x77",  # CONNACK with an unknown property
        b"\x20\x02\x00\x55",  # CONNACK with an unknown reason code
        b"\x90\x03\x00\x01\x00",  # SUBACK without reason codes
        b"\x50\x02\x00\x01",  # PUBREC: we never publish QoS 2
        b"\x90" + varint(LIMIT + 1),  # a SUBACK larger than we told the broker we take
    ],
)
def test_what_no_broker_should_send_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(data)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_protocol_error_and_never_overrun(data: bytes) -> None:
    messages: list[RawMessage] = []
    try:
        used, _skip = parse_packets(data, 1, 1, LIMIT, PAYLOAD_LIMIT, messages, [], 1_000)
    except ProtocolError:
        return
    assert 0 <= used <= len(data)
    for message in messages:
        assert len(message.payload) <= len(data)


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=40),
            st.binary(max_size=200),
            st.integers(0, 1),
            st.integers(1, 65535),
        ),
        max_size=20,
    ),
    st.integers(min_value=1, max_value=64),
)
def test_a_stream_of_publishes_read_in_any_chunks_gives_every_message_once(
    packets: list[tuple[str, bytes, int, int]], chunk: int
) -> None:
    stream = b"".join(publish(t, p, q, i) for t, p, q, i in packets)
    pending, got = b"", []
    for start in range(0, len(stream), chunk):
        pending += stream[start : start + chunk]
        messages, _, used = parse(pending)
        got.extend(messages)
        pending = pending[used:]
    assert pending == b""
    assert [(m.topic, m.payload, m.qos, m.mid if m.qos else 0) for m in got] == [
        (t, p, q, i if q else 0) for t, p, q, i in packets
    ]


def test_messages_of_one_read_each_get_their_own_arrival_time() -> None:
    data = b"".join(publish(f"t/{n}", b"{}", packet_id=n + 1) for n in range(3))
    messages, _, _ = parse(data)
    assert [m.received_ns for m in messages] == [123, 124, 125]
    held = messages[:1]  # a batch already holding a message from an earlier read
    parse_packets(data, 500, 4, LIMIT, PAYLOAD_LIMIT, held, [], 10)
    assert [m.received_ns for m in held] == [123, 500, 501, 502]
