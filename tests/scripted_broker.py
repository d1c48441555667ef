"""A byte-level scripted MQTT 5 broker, for the client's edge cases a real broker cannot be
made to show on cue (a PUBLISH in the same write as CONNACK, QoS 2 on a QoS 1 subscription,
a packet over our Maximum Packet Size, a session taken over).

Each accepted connection runs the next script (the last one again once they run out) on its
own thread; a script reads what the client sent and writes exactly the bytes it means to.
Every packet the client sent is kept, per connection, for the test to assert on.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from smartplace.ingest.receive.mqtt_wire import varint

CONNECT, PUBLISH, PUBACK, PUBREC, PUBREL, SUBSCRIBE, PINGREQ, DISCONNECT = 1, 3, 4, 5, 6, 8, 12, 14


@dataclass(frozen=True)
class Packet:
    first: int
    body: bytes

    @property
    def kind(self) -> int:
        return self.first >> 4

    @property
    def packet_id(self) -> int:
        return int(struct.unpack_from(">H", self.body)[0])


@dataclass
class Connection:
    sock: socket.socket
    received: list[Packet] = field(default_factory=list)
    _buffer: bytes = b""

    def read(self, timeout_s: float = 10.0) -> Packet | None:
        """The client's next packet; None when it closed the connection."""
        while True:
            packet = self._whole_packet()
            if packet is not None:
                self.received.append(packet)
                return packet
            try:
                self.sock.settimeout(timeout_s)
                chunk = self.sock.recv(65536)
            except OSError:
                return None
            if not chunk:
                return None
            self._buffer += chunk

    def expect(self, kind: int, timeout_s: float = 10.0) -> Packet:
        packet = self.read(timeout_s)
        assert packet is not None, f"the client closed the connection; expected type {kind}"
        assert packet.kind == kind, f"expected packet type {kind}, got {packet.kind}"
        return packet

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def _whole_packet(self) -> Packet | None:
        data = self._buffer
        if len(data) < 2:
            return None
        length = shift = 0
        position = 1
        while True:
            if position >= len(data):
                return None
            byte = data[position]
            position += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if len(data) < position + length:
            return None
        self._buffer = data[position + length :]
        return Packet(data[0], data[position : position + length])


Script = Callable[[Connection], None]


class ScriptedBroker:
    def __init__(self, *scripts: Script) -> None:
        self.scripts = scripts
        self.connections: list[Connection] = []
        self.errors: list[BaseException] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            connection = Connection(sock)
            script = self.scripts[min(len(self.connections), len(self.scripts) - 1)]
            self.connections.append(connection)
            thread = threading.Thread(target=self._run, args=(script, connection), daemon=True)
            thread.start()  # before close() can see it: joining an unstarted thread raises
            self._threads.append(thread)

    def _run(self, script: Script, connection: Connection) -> None:
        try:
            script(connection)
        except BaseException as exc:  # reported by close(), on the test's thread
            self.errors.append(exc)

    def close(self) -> None:
        """Let every script finish (each read gives up after its timeout), then close."""
        self._listener.close()
        for thread in list(self._threads):
            thread.join(30)
        for connection in self.connections:
            connection.close()
        if self.errors:
            raise self.errors[0]


@contextmanager
def scripted_broker(*scripts: Script) -> Iterator[ScriptedBroker]:
    broker = ScriptedBroker(*scripts)
    try:
        yield broker
    finally:
        broker.close()


# -- what a broker sends ---------------------------------------------------------------


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connack(session_present: bool = False, reason: int = 0, **properties: int | str) -> bytes:
    """CONNACK with paho-named properties, e.g. ``SessionExpiryInterval=300``."""
    packed = Properties(PacketTypes.CONNACK)  # type: ignore[no-untyped-call]
    for name, value in properties.items():
        setattr(packed, name, value)
    return _packet(0x20, bytes([int(session_present), reason]) + packed.pack())  # type: ignore[no-untyped-call]


def suback(packet_id: int, *codes: int) -> bytes:
    return _packet(0x90, struct.pack(">H", packet_id) + b"\x00" + bytes(codes))


def publish(
    topic: str, payload: bytes, packet_id: int = 1, qos: int = 1, retain: bool = False
) -> bytes:
    name = topic.encode()
    body = struct.pack(">H", len(name)) + name
    if qos:
        body += struct.pack(">H", packet_id)
    first = 0x30 | (qos << 1) | int(retain)
    return _packet(first, body + b"\x00" + payload)


def disconnect(reason: int) -> bytes:
    return _packet(0xE0, bytes([reason, 0]))


# -- what the client sent ---------------------------------------------------------------


def connect_client_id(packet: Packet) -> str:
    """The client id of a CONNECT (after its variable header and properties)."""
    body = packet.body
    position = 10  # protocol name (6), level, flags, keep-alive (2)
    length = shift = 0
    while True:
        byte = body[position]
        position += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    position += length
    size = struct.unpack_from(">H", body, position)[0]
    return body[position + 2 : position + 2 + size].decode()


def connect_properties(packet: Packet) -> Properties:
    """The properties of a CONNECT (Receive Maximum, Session Expiry, ...), paho-named."""
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.unpack(packet.body[10:])  # type: ignore[no-untyped-call]
    return properties


def subscribe_filters(packet: Packet) -> list[tuple[str, int]]:
    """(filter, options byte) of a SUBSCRIBE, which we send with no properties."""
    body, position, out = packet.body, 3, []
    while position < len(body):
        size = struct.unpack_from(">H", body, position)[0]
        out.append((body[position + 2 : position + 2 + size].decode(), body[position + 2 + size]))
        position += 3 + size
    return out


def accept_and_subscribe(
    connection: Connection,
    *connack_before: bytes,
    session_present: bool = False,
    **properties: int | str,
) -> None:
    """The usual opening: CONNECT in, CONNACK (plus whatever rides with it) out, SUBSCRIBE in,
    SUBACK granting QoS 1 to each filter out."""
    connection.expect(CONNECT)
    connection.send(connack(session_present, **properties) + b"".join(connack_before))
    subscribe = connection.expect(SUBSCRIBE)
    connection.send(suback(subscribe.packet_id, *[1] * len(subscribe_filters(subscribe))))
