"""A stand-in for The Things Stack's MQTT server, shared by the bridge and backfill tests.

A mosquitto with TLS (a CA made here), logins as ``{application}@{tenant}`` with an
API key, as TTS's MQTT server asks. mosquitto 2.0 cannot refuse MQTT 5 (its
``accept_protocol_versions`` listener option comes with 2.1: ChangeLog.txt on
eclipse/mosquitto's develop branch; no 2.0 release has it), so a gate in front of it
does what TTS's MQTT server does (TheThingsIndustries/mystique, pkg/packet/connect.go
``ConnectPacket.Validate`` and pkg/session/connect.go ``ReadConnect``): a CONNECT whose
protocol level is not 3 or 4 (MQTT 3.1, 3.1.1) is answered with a 3.1.1 CONNACK 0x01,
unacceptable protocol version, and the connection closed. The gate speaks TLS only, with
the same certificate, and records which client ids and levels it let through. Plus a TCP
relay between the bridge and it, so a test can cut the bridge's link while the stand-in
itself keeps running, as a network outage does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import getpass
import secrets
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from smartplace.stack import MosquittoServer, free_port
from tests.conftest import another_broker

APPLICATION = "town-bins@council"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it."""
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_cert),
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(extensions),
        "-out",
        str(cert),
    )
    return ca_cert, cert, key


class StandInServer:
    """A mosquitto with TLS and a password file: the network server's MQTT server."""

    def __init__(
        self, binary: Path, directory: Path, api_key: str, username: str = APPLICATION
    ) -> None:
        self.directory = directory
        self.username = username
        self.mosquitto_port = free_port()
        self.ca, cert, key = make_ca(directory)
        passwords = directory / "passwords"
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(passwords), username, api_key],
            check=True,
            capture_output=True,
        )
        self.log = directory / "standin.log"
        config = directory / "standin.conf"
        config.write_text(
            f"listener {self.mosquitto_port} 127.0.0.1\n"
            f"cafile {self.ca}\ncertfile {cert}\nkeyfile {key}\n"
            f"allow_anonymous false\npassword_file {passwords}\n"
            "max_queued_messages 0\n"
            f"log_dest file {self.log}\nlog_type all\n"
            # started as root mosquitto drops to 'mosquitto', who cannot read our temp dir
            f"user {getpass.getuser()}\n"
        )
        self.process = subprocess.Popen(
            [str(binary), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.gate = Mqtt311Gate(self.mosquitto_port, self.ca, cert, key)
        self.port = self.gate.port
        """Where clients connect: the gate, in front of the mosquitto."""

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        self.gate.close()
        self.process.terminate()
        self.process.wait(10)


UNACCEPTABLE_PROTOCOL_VERSION = b"\x20\x02\x00\x01"
"""An MQTT 3.1.1 CONNACK, return code 1: what mystique answers a CONNECT of another level."""


async def _remaining_length(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """An MQTT fixed header's remaining length (a variable byte integer) and its bytes."""
    value, raw = 0, b""
    for shift in range(0, 28, 7):
        byte = await reader.readexactly(1)
        raw += byte
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value, raw
    raise ValueError("remaining length longer than 4 bytes")


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        writer.close()


class Mqtt311Gate:
    """TLS in front of the stand-in's mosquitto that lets through MQTT 3.1 and 3.1.1 only.

    On an event loop of its own (asyncio does TLS in memory, on one thread: an SSL socket is
    not safe to read and write from two). ``passed`` holds (client id, protocol level) of each
    connection let through, ``refused`` the levels answered UNACCEPTABLE_PROTOCOL_VERSION.
    """

    def __init__(self, target_port: int, ca: Path, cert: Path, key: Path) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.passed: list[tuple[str, int]] = []
        self.refused: list[int] = []
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_tls.load_cert_chain(cert, key)
        self._client_tls = ssl.create_default_context(cafile=str(ca))
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        listening = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(listening,), name="mqtt311-gate", daemon=True
        )
        self._thread.start()
        assert listening.wait(10), "the gate did not start listening"

    def _run(self, listening: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", self.port, ssl=self._server_tls)
        )
        listening.set()
        self._loop.run_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readexactly(1)
            if head[0] >> 4 != 1:  # the first packet is no CONNECT: mystique closes
                return
            length, raw_length = await _remaining_length(reader)
            body = await reader.readexactly(length)
            name_end = 2 + int.from_bytes(body[0:2], "big")
            name, level = body[2:name_end], body[name_end]
            if name not in (b"MQTT", b"MQIsdp") or level not in (3, 4):
                self.refused.append(level)
                writer.write(UNACCEPTABLE_PROTOCOL_VERSION)
                await writer.drain()
                return
            at = name_end + 4  # level, connect flags, keep alive (2); no properties before 5
            client_id = body[at + 2 : at + 2 + int.from_bytes(body[at : at + 2], "big")]
            self.passed.append((client_id.decode(errors="replace"), level))
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port, ssl=self._client_tls, server_hostname="127.0.0.1"
            )
            up_writer.write(head + raw_length + body)
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except (asyncio.IncompleteReadError, ValueError, OSError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(shut()))
        self._thread.join(10)


def wait_for(predicate: Callable[[], object], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout_s} s")


def uplink(device: str, f_cnt: int, moment: datetime) -> bytes:
    frm = struct.pack("<BBBBBH", 0x01, 0x75, 80, 0x03, 0x82, 300 + f_cnt)
    return orjson.dumps(
        {
            "end_device_ids": {
                "device_id": device,
                "application_ids": {"application_id": "town-bins"},
            },
            "received_at": moment.isoformat().replace("+00:00", "Z"),
            "uplink_message": {
                "session_key_id": "AXA50tHUGUucuzS/bCGMNw==",
                "f_port": 85,
                "f_cnt": f_cnt,
                "frm_payload": base64.b64encode(frm).decode(),
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -100, "snr": 5.5}],
                "version_ids": {"brand_id": "milesight-iot", "model_id": "em310-udl"},
            },
        }
    )


def tts_publisher(standin: StandInServer, api_key: str) -> paho.Client:
    """A client publishing on the stand-in as TTS's application server would, started."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"tts-standin-publisher-{secrets.token_hex(3)}",
        protocol=paho.MQTTv311,
    )
    client.username_pw_set(standin.username, api_key)
    client.tls_set(ca_certs=str(standin.ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.connect("127.0.0.1", standin.port)
    client.loop_start()
    return client


class LinkRelay:
    """A TCP relay on a port of its own to the stand-in: the bridge's network link.

    ``cut()`` closes every relayed connection and stops listening, so the bridge is
    disconnected and its reconnections refused while the stand-in runs on; ``restore()``
    listens again on the same port. TLS passes through untouched (the certificate is
    for 127.0.0.1, where both listen).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return  # cut: the listener is closed
            try:
                far = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                near.close()
                continue
            with self._lock:
                self._sockets += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        assert self._listener is not None
        # close() alone does not wake a thread blocked in accept() on Linux; shutdown() does
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for end in sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        if self._listener is not None:
            self.cut()


def bridged_broker(
    mosquitto: MosquittoServer, directory: Path, bridge_file: Path
) -> MosquittoServer:
    """The project's broker (a mosquitto of its own, dynamic security) running a bridge file
    a ``smartplace lorawan bridge`` command wrote; not started."""
    return another_broker(mosquitto, directory, extra_config=bridge_file.read_text())
