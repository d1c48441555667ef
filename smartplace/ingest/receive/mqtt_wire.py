"""Just enough MQTT 5 for a subscriber that acknowledges late and in bulk.

Out: CONNECT, SUBSCRIBE, PINGREQ, DISCONNECT and runs of PUBACKs. In:
CONNACK, SUBACK, PUBLISH (QoS 0 and 1 only), PINGRESP and DISCONNECT. Pure
byte work, no sockets. Section numbers are those of the MQTT 5.0 standard. PUBLISH parsing is hand-written because it runs once per message
and paho's receive loop was the wall ingest hit (see README, Performance);
control packets' properties and reason codes go through paho's own codec.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from paho.mqtt.exception import MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from smartplace.errors import SmartplaceError
from smartplace.ingest.receive.message import RawMessage

# The packet types a subscriber receives (what it sends is built whole below).
CONNACK, PUBLISH, SUBACK, PINGRESP, DISCONNECT = 2, 3, 9, 13, 14

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # normal disconnection: the session (and its queue) stays
MAX_QOS = 1
"""Every subscription asks for at most QoS 1, so no conforming broker sends QoS 2 (3.8.4)."""

# Reason codes we send or name (2.4).
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
SESSION_TAKEN_OVER = 0x8E
PACKET_TOO_LARGE = 0x95
_PUBACK = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
MAX_REMAINING_LENGTH = 268_435_455  # four bytes of variable-length integer


class ProtocolError(SmartplaceError):
    """The broker sent bytes that are not MQTT 5 as we asked for it: the connection is dropped,
    after a DISCONNECT with ``code`` (4.13)."""

    def __init__(self, message: str, code: int = MALFORMED_PACKET) -> None:
        super().__init__(message)
        self.code = code


def varint(value: int) -> bytes:
    """MQTT's variable byte integer (1.5.5)."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return _U16.pack(len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + varint(len(body)) + body


def connect_packet(
    client_id: str,
    keepalive_s: int,
    credentials: tuple[str, str] | None,
    *,
    clean_start: bool,
    session_expiry_s: int,
    receive_maximum: int,
    maximum_packet_size: int,
) -> bytes:
    flags = 0x02 if clean_start else 0
    payload = _string(client_id)
    if credentials is not None:
        flags |= 0xC0
        payload += _string(credentials[0]) + _string(credentials[1])
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session_expiry_s
    properties.ReceiveMaximum = receive_maximum
    properties.MaximumPacketSize = maximum_packet_size
    head = _string("MQTT") + bytes([5, flags]) + _U16.pack(keepalive_s)
    return _packet(0x10, head + properties.pack() + payload)  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Subscription:
    topic_filter: str
    retain_handling: int = 0
    """3.8.3.1: 0 sends the retained messages at every SUBSCRIBE, 1 only when the subscription is
    new, 2 never."""


def subscribe_packet(packet_id: int, subscriptions: Sequence[Subscription]) -> bytes:
    """One SUBSCRIBE, each filter at Maximum QoS 1 with its Retain Handling (3.8.3.1)."""
    body = _U16.pack(packet_id) + b"\x00"  # no properties
    for subscription in subscriptions:
        options = MAX_QOS | (subscription.retain_handling << 4)
        body += _string(subscription.topic_filter) + bytes([options])
    return _packet(0x82, body)


def disconnect_packet(reason_code: int) -> bytes:
    """A DISCONNECT with a reason code and no properties (3.14.2)."""
    return bytes([0xE0, 1, reason_code])


def puback_packets(packet_ids: Iterable[int]) -> bytes:
    """One PUBACK per id, success with no properties (4 bytes each), as one write."""
    pack = _PUBACK.pack
    return b"".join([pack(0x40, 2, packet_id) for packet_id in packet_ids])


@dataclass(frozen=True, slots=True)
class Control:
    """A packet other than PUBLISH, as the connection needs it."""

    kind: int
    reason: ReasonCode | None = None
    """CONNACK's, DISCONNECT's, or SUBACK's first failing one (else its first)."""
    session_present: bool = False
    packet_id: int = 0
    codes: tuple[int, ...] = ()
    """SUBACK: one reason code per filter, in the order subscribed (3.9.3)."""
    reason_string: str | None = None
    # CONNACK's properties (3.2.2.3); None when the broker left one out.
    server_keepalive_s: int | None = None
    """The keep-alive the broker insists on, when it does (0: none)."""
    session_expiry_s: int | None = None
    """The session expiry the broker grants, when other than we asked."""
    receive_maximum: int | None = None
    """QoS 1 PUBLISHes the broker takes unacknowledged from us (we send none)."""
    maximum_packet_size: int | None = None
    """The largest packet the broker takes from us."""
    assigned_client_id: str | None = None
    """The client id the broker gave us (it must when we sent none, 3.2.2.3.7)."""


def _read_varint(data: bytes, position: int, end: int) -> tuple[int, int] | None:
    """(value, position after it), None when the bytes stop first; ProtocolError past 4 bytes."""
    value = shift = 0
    while position < end:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
        if shift > 21:
            raise ProtocolError("a variable byte integer longer than 4 bytes")
    return None


def parse_connack(data: bytes, max_packet_bytes: int) -> tuple[Control, int] | None:
    """The CONNACK that must open what the broker sends (3.2.0-1) and the bytes it took;
    None while it is cut short. Raises ProtocolError when something else comes first."""
    length_at = _read_varint(data, 1, len(data)) if data else None
    if length_at is None:
        return None
    length, start = length_at
    if data[0] >> 4 != CONNACK:
        raise ProtocolError(
            f"a packet of type {data[0] >> 4} before CONNACK (3.2.0-1)", PROTOCOL_ERROR
        )
    if length > max_packet_bytes:
        raise ProtocolError(f"a {length}-byte CONNACK", PACKET_TOO_LARGE)
    if start + length > len(data):
        return None
    return _control(data[0], data[start : start + length]), start + length


def parse_packets(
    data: bytes,
    received_ns: int,
    connection: int,
    max_packet_bytes: int,
    max_payload_bytes: int,
    messages: list[RawMessage],
    controls: list[Control],
    max_messages: int,
) -> tuple[int, int]:
    """Whole packets at the start of ``data``: PUBLISHes appended to ``messages`` (at most
    ``max_messages`` in all), the rest to ``controls``. Returns the bytes consumed and the
    bytes still to discard; a packet cut short stays for the next read. Raises ProtocolError
    on what no broker should send.

    A PUBLISH over ``max_packet_bytes`` is one a broker should have dropped for us (3.1.2.11.4)
    and ejabberd sends anyway: it comes out with its payload cut to ``max_payload_bytes`` + 1
    (so it is refused as too large, and acknowledged like any message), parsing stops there, and
    the second number says how much of it is still to come, to be skipped unread.

    The k-th PUBLISH of the call (from 0) is stamped ``received_ns + k``: no two messages share
    an arrival time, so one time says which of them came before it (``ledger.py``).
    """
    position, size = 0, len(data)
    append = messages.append
    received_ns -= len(messages)  # + len(messages) below is the count appended in this call
    while position < size and len(messages) < max_messages:
        first = data[position]
        length_at = _read_varint(data, position + 1, size)
        if length_at is None:
            break
        length, start = length_at
        end = start + length
        if length > max_packet_bytes:
            cut = _oversized(data, first, start, end, max_packet_bytes, max_payload_bytes)
            if cut is None:
                break
            append(_publish(data, first, start, cut, received_ns + len(messages), connection))
            if cut < end:
                return cut, end - cut
            position = end  # over the limit by its header alone: the payload came whole
            continue
        if end > size:
            break
        if first >> 4 == PUBLISH:
            append(_publish(data, first, start, end, received_ns + len(messages), connection))
        else:
            controls.append(_control(first, data[start:end]))
        position = end
    return position, 0


def _oversized(
    data: bytes, first: int, start: int, end: int, max_packet_bytes: int, max_payload_bytes: int
) -> int | None:
    """Where to cut an oversized PUBLISH: after its header and ``max_payload_bytes`` + 1 bytes
    of payload; None until those bytes are here. Anything but a PUBLISH, or one whose header
    alone is over the limit, is a ProtocolError."""
    if first >> 4 != PUBLISH:
        raise ProtocolError(
            f"a {end - start}-byte packet, beyond the {max_packet_bytes} we allow",
            PACKET_TOO_LARGE,
        )
    size = len(data)
    if start + 2 > size:
        return None
    position = start + 2 + ((data[start] << 8) | data[start + 1])
    if (first >> 1) & 3:
        position += 2
    properties = _read_varint(data, position, size)
    if properties is None:
        return None
    header_end = properties[1] + properties[0]
    if header_end - start > max_packet_bytes:
        raise ProtocolError(
            f"a PUBLISH whose header alone is {header_end - start} bytes, beyond the"
            f" {max_packet_bytes} we allow",
            PACKET_TOO_LARGE,
        )
    cut = min(end, header_end + max_payload_bytes + 1)
    return cut if cut <= size else None


def _publish(
    data: bytes, first: int, start: int, end: int, received_ns: int, connection: int
) -> RawMessage:
    qos = (first >> 1) & 3
    if qos == 2:
        # We never subscribe above QoS 1, and a delivery's QoS is at most its subscription's
        # (3.8.4-8): PUBACK would be the wrong answer and PUBREC a flow we never asked for.
        raise ProtocolError(
            "a QoS 2 PUBLISH on a subscription of at most QoS 1 (3.8.4-8)", PROTOCOL_ERROR
        )
    if qos == 3 or end - start < 3:
        raise ProtocolError("a malformed PUBLISH")
    topic_end = start + 2 + ((data[start] << 8) | data[start + 1])
    if topic_end > end:
        raise ProtocolError("a PUBLISH whose topic runs past its end")
    topic = data[start + 2 : topic_end].decode("utf-8", "surrogateescape")
    position, packet_id = topic_end, 0
    if qos:
        if position + 2 > end:
            raise ProtocolError("a PUBLISH without its packet id")
        packet_id = (data[position] << 8) | data[position + 1]
        position += 2
    properties = _read_varint(data, position, end)
    if properties is None or properties[1] + properties[0] > end:
        raise ProtocolError("a PUBLISH whose properties run past its end")
    if not topic:
        # A topic alias (we allow none, so the broker may not send one).
        raise ProtocolError("a PUBLISH with an empty topic")
    return RawMessage(
        topic,
        data[properties[1] + properties[0] : end],
        received_ns,
        packet_id,
        qos,
        bool(first & 0x08),
        connection,
        bool(first & 0x01),
    )


def _control(first: int, body: bytes) -> Control:
    kind = first >> 4
    try:
        if kind == CONNACK:
            reason = ReasonCode(PacketTypes.CONNACK, identifier=body[1])
            properties = _properties(PacketTypes.CONNACK, body[2:])
            return Control(
                kind,
                reason,
                session_present=bool(body[0] & 1),
                reason_string=getattr(properties, "ReasonString", None),
                server_keepalive_s=getattr(properties, "ServerKeepAlive", None),
                session_expiry_s=getattr(properties, "SessionExpiryInterval", None),
                receive_maximum=getattr(properties, "ReceiveMaximum", None),
                maximum_packet_size=getattr(properties, "MaximumPacketSize", None),
                assigned_client_id=getattr(properties, "AssignedClientIdentifier", None),
            )
        if kind == SUBACK:
            packet_id = _U16.unpack_from(body)[0]
            properties_length = _read_varint(body, 2, len(body))
            if properties_length is None:
                raise ProtocolError("a SUBACK cut short")
            codes = body[properties_length[1] + properties_length[0] :]
            if not codes:
                raise ProtocolError("a SUBACK without reason codes")
            failing = [code for code in codes if code >= 0x80]
            if any(MAX_QOS < code < 0x80 for code in codes):
                raise ProtocolError(
                    "a SUBACK granting more than the QoS 1 we asked (3.9.3)", PROTOCOL_ERROR
                )
            reason = ReasonCode(PacketTypes.SUBACK, identifier=(failing or list(codes))[0])
            return Control(kind, reason, packet_id=packet_id, codes=tuple(codes))
        if kind == DISCONNECT:
            if not body:
                return Control(kind, ReasonCode(PacketTypes.DISCONNECT, identifier=0))
            reason = ReasonCode(PacketTypes.DISCONNECT, identifier=body[0])
            properties = _properties(PacketTypes.DISCONNECT, body[1:])
            return Control(kind, reason, reason_string=getattr(properties, "ReasonString", None))
        if kind == PINGRESP:
            return Control(kind)
    except (IndexError, struct.error, KeyError, ValueError, MQTTException) as exc:
        raise ProtocolError(f"a malformed packet of type {kind}: {exc}") from exc
    raise ProtocolError(f"an unexpected packet of type {kind}")


def _properties(packet_type: int, data: bytes) -> Properties | None:
    if not data:
        return None
    properties = Properties(packet_type)  # type: ignore[no-untyped-call]
    properties.unpack(data)  # type: ignore[no-untyped-call]
    return properties
