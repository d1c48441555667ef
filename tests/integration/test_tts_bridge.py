"""The Things Stack over MQTT, the supported way: the project's broker bridged to TTS.

TTS cannot run here, so a second mosquitto stands in for its MQTT server: TLS with a CA made
here, logins as ``{application}@{tenant}`` with an API key. mosquitto 2.0 cannot refuse
MQTT 5 (``accept_protocol_versions`` comes with 2.1), so the stand-in has a gate in front
(tts_standin.Mqtt311Gate) that answers any CONNECT but MQTT 3.1/3.1.1 with CONNACK 0x01 and
closes, as TTS's MQTT server does; test_the_standin_refuses_mqtt_5_and_plain_tcp_as_tts_does
shows it refusing MQTT 5 and plain TCP. What the bridge test proves of the bridge: its
CONNECT passed that gate at protocol level 4 (3.1.1), and mosquitto's log names the login
p2 (its enum for 3.1.1; MQTT 5 is p5) as user ``town-bins@council``. TLS is proven by the
listeners (the gate and the mosquitto take TLS only, checked against the test CA);
mosquitto 2.0's log does not say whether a connection is TLS. Not proven: anything about
TTS beyond its CONNECT rule, login and topics (its QoS 0 delivery is assumed by publishing
at QoS 0).

The project's broker is set up as the stack sets it up (BROKER_SETTINGS, so
upgrade_outgoing_qos), plus the file ``smartplace lorawan bridge`` writes. 1,000 uplinks
published at QoS 0, as TTS publishes, with ingest (``smartplace ingest``, a process)
stopped twice mid-stream, once by SIGTERM and once by SIGKILL, and started again: every
one lands in InfluxDB, once.
"""

from __future__ import annotations

import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smartplace.config import InfluxSettings, IngestSettings, Settings
from smartplace.influx import InfluxClient
from smartplace.lorawan.bridge import TtsBridge, render_tts_bridge
from smartplace.stack import InfluxdServer, MosquittoServer, free_port
from smartplace.stack.mosquitto import provisioned_mqtt
from tests.chaos.harness import IngestProcess

from ..conftest import RunningIngest
from .helpers import points, run_smartplace
from .tts_standin import (
    APPLICATION,
    UNACCEPTABLE_PROTOCOL_VERSION,
    StandInServer,
    bridged_broker,
    tts_publisher,
    uplink,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UPLINKS = 1000
DEVICES = 10
RATE_PER_S = 50.0
"""Uplinks a second from the stand-in: 20 s of stream, so both restarts fall within it."""


@pytest.fixture
def bridged(
    mosquitto: MosquittoServer, influxd: InfluxdServer, tmp_path: Path
) -> Iterator[tuple[Settings, StandInServer]]:
    api_key = "NNSXS." + secrets.token_hex(20)
    standin = StandInServer(mosquitto.binary, tmp_path, api_key)
    key_file = tmp_path / "api-key"
    key_file.write_text(api_key + "\n")
    bridge_file = tmp_path / "bridge.conf"
    # written by the command, as a person would
    result = run_smartplace(
        {},
        "lorawan",
        "bridge",
        "--output",
        str(bridge_file),
        "--address",
        f"127.0.0.1:{standin.port}",
        "--api-key-file",
        str(key_file),
        "--application",
        APPLICATION,
        "--ca-file",
        str(standin.ca),
    )
    assert result.returncode == 0, result.stderr
    assert bridge_file.stat().st_mode & 0o777 == 0o600
    assert bridge_file.read_text() == render_tts_bridge(
        TtsBridge(f"127.0.0.1:{standin.port}", APPLICATION, key_file, standin.ca)
    )
    broker = bridged_broker(mosquitto, tmp_path / "project", bridge_file)
    broker.start()
    mqtt = provisioned_mqtt(broker, "bridge")
    settings = Settings(
        mqtt=mqtt,
        influx=InfluxSettings(
            url=influxd.url, database=f"test_{mqtt.topic_prefix.removeprefix('bridge-')}"
        ),
        ingest=IngestSettings(batch_max_wait_s=0.05, require_registered_devices=False, http_port=0),
        registry_file=Path(tempfile.mkdtemp(prefix="smartplace-test-registry-")) / "registry.db",
    )
    try:
        yield settings, standin
    finally:
        broker.stop()
        standin.stop()


class PacedTtsPublisher:
    """Publishes uplinks on the stand-in at QoS 0, as TTS does, at a steady rate on a thread."""

    def __init__(
        self, standin: StandInServer, messages: list[tuple[str, bytes]], rate_per_s: float
    ) -> None:
        self.messages = messages
        self.rate_per_s = rate_per_s
        self.sent = 0
        self.client = tts_publisher(standin, (standin.directory / "api-key").read_text().strip())
        self._thread = threading.Thread(target=self._run, name="tts-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        for n, (topic, payload) in enumerate(self.messages):
            pause = started + n / self.rate_per_s - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.client.publish(topic, payload, qos=0).wait_for_publish(10)
            self.sent = n + 1

    def finish(self) -> None:
        self._thread.join(120)
        assert not self._thread.is_alive(), f"published {self.sent} of {len(self.messages)}"
        self.client.loop_stop()
        self.client.disconnect()


def test_a_thousand_uplinks_through_the_bridge_land_once_with_ingest_restarted_twice(
    bridged: tuple[Settings, StandInServer], tmp_path: Path
) -> None:
    """Ingest is ``smartplace ingest``, a process: stopped once with SIGTERM (it drains and
    exits 0) and once with SIGKILL (nothing drained, its MQTT session and spool as they were),
    each time while the stand-in goes on publishing, and started again each time."""
    settings, standin = bridged
    wait_for(
        lambda: "Received SUBSCRIBE from smartplace-bridge-town-bins" in standin.log_text(),
        "the bridge subscribed at the stand-in",
    )
    login = re.search(
        r"as smartplace-bridge-town-bins \(p(\d+), c(\d), k\d+, u'([^']+)'\)", standin.log_text()
    )
    assert login is not None
    # mosquitto logs its protocol enum: 2 is MQTT 3.1.1 (its MQTT 5 clients show p5)
    assert (login[1], login[3]) == ("2", APPLICATION)
    # and on the wire: the gate, which refuses any other level as TTS does, saw level 4
    assert standin.gate.passed == [("smartplace-bridge-town-bins", 4)]
    # A bridge set to MQTT 5 gets in too, at its second try: mosquitto's bridge falls back to
    # 3.1.1 on this refusal (src/handle_connack.c, 2.0.11). So: refused nothing, not once.
    assert standin.gate.refused == []

    tag = secrets.token_hex(3)
    devices = [f"bin-br{tag}{d}" for d in range(DEVICES)]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    messages = [
        (
            f"v3/{APPLICATION}/devices/{devices[i % DEVICES]}/up",
            uplink(devices[i % DEVICES], i // DEVICES + 1, start + timedelta(seconds=5 * i)),
        )
        for i in range(UPLINKS)
    ]
    ingest = IngestProcess(settings, tmp_path, free_port())
    publisher = PacedTtsPublisher(standin, messages, RATE_PER_S)
    stopped_at: list[int] = []
    back_at: list[int] = []
    with InfluxClient(settings.influx) as influx:

        def landed() -> int:
            try:
                rows = influx.query_rows(
                    f'SELECT count("distance_mm") FROM "raw"."bin" WHERE "device_id" =~ /^bin-br{tag}/'
                )
            except Exception:
                return 0
            return int(rows[0]["count"]) if rows else 0

        try:
            ingest.start()
            publisher.start()
            wait_for(lambda: landed() >= 250, "250 uplinks landed")
            stopped_at.append(publisher.sent)
            assert ingest.terminate() == 0, ingest.log_tail()  # restart 1: SIGTERM, drained
            time.sleep(1)  # away a while, the stand-in publishing on
            ingest.start()
            back_at.append(publisher.sent)
            wait_for(lambda: landed() >= 600, "600 uplinks landed")
            stopped_at.append(publisher.sent)
            ingest.kill()  # restart 2: SIGKILL, mid-batch
            time.sleep(1)
            ingest.start()
            back_at.append(publisher.sent)
            publisher.finish()
            try:
                wait_for(lambda: landed() >= UPLINKS, f"{UPLINKS} uplinks landed", timeout_s=120)
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {landed()} landed") from None
            time.sleep(2)  # anything redelivered after the kill has had its chance to land twice
            assert ingest.terminate() == 0, ingest.log_tail()
        finally:
            if ingest.process is not None and ingest.process.poll() is None:
                ingest.kill()
        stored = [p for p in points(influx, "raw", "bin") if p["device_id"] in devices]
        rejects = [p for p in points(influx, "raw", "ingest_rejects") if tag in str(p)]
    print(
        f"\nBRIDGE restarts: stopped at {stopped_at} published, back at {back_at}; "
        f"{len(stored)} stored; rejects {sorted(str(r.get('reason')) for r in rejects)}"
    )
    # both restarts mid-stream: the stand-in was still publishing when ingest came back
    assert all(0 < s <= b < UPLINKS for s, b in zip(stopped_at, back_at, strict=True))
    assert len(stored) == UPLINKS
    assert sorted((p["device_id"], p["distance_mm"]) for p in stored) == sorted(
        (devices[i % DEVICES], float(300 + i // DEVICES + 1)) for i in range(UPLINKS)
    )


def connect_packet(level: int, client_id: bytes, username: str = "", password: str = "") -> bytes:
    """An MQTT CONNECT of the given protocol level (4: 3.1.1, 5: MQTT 5), clean session."""

    def text(value: bytes) -> bytes:
        return len(value).to_bytes(2, "big") + value

    flags = 0x02 | (0xC0 if username else 0)
    header = text(b"MQTT") + bytes([level, flags]) + (60).to_bytes(2, "big")
    if level == 5:
        header += b"\x00"  # no properties
    payload = text(client_id)
    if username:
        payload += text(username.encode()) + text(password.encode())
    body = header + payload
    assert len(body) < 128  # one byte of remaining length
    return bytes([0x10, len(body)]) + body


def first_reply(standin: StandInServer, packet: bytes, tls: bool = True) -> bytes:
    """What the stand-in sends back to a CONNECT, up to its closing the connection."""
    raw = socket.create_connection(("127.0.0.1", standin.port), timeout=10)
    context = ssl.create_default_context(cafile=str(standin.ca))
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1") if tls else raw
    with sock:
        sock.sendall(packet)
        reply = b""
        try:
            while len(reply) < 4 and (chunk := sock.recv(4 - len(reply))):
                reply += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
    return reply


def test_the_standin_refuses_mqtt_5_and_plain_tcp_as_tts_does(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    """The stand-in's own behaviour, on which the bridge test's proof rests: an MQTT 5
    CONNECT, however good its login, is answered CONNACK 0x01 (unacceptable protocol
    version) in 3.1.1's form and the connection closed, as TTS's MQTT server (mystique)
    answers; the same login at 3.1.1 is accepted; without TLS nothing is answered."""
    api_key = "NNSXS." + secrets.token_hex(20)
    standin = StandInServer(mosquitto.binary, tmp_path, api_key)
    try:
        wait_for(lambda: "Opening ipv4 listen socket" in standin.log_text(), "the stand-in up")
        v5 = first_reply(standin, connect_packet(5, b"probe-v5", APPLICATION, api_key))
        v311 = first_reply(standin, connect_packet(4, b"probe-v311", APPLICATION, api_key))
        plain = first_reply(standin, connect_packet(4, b"probe-plain", APPLICATION, api_key), False)
    finally:
        standin.stop()
    assert v5 == UNACCEPTABLE_PROTOCOL_VERSION
    assert v311 == b"\x20\x02\x00\x00"  # CONNACK, accepted
    assert plain == b""
    assert standin.gate.refused == [5]
    assert standin.gate.passed == [("probe-v311", 4)]


def test_smartplace_up_includes_the_bridge_the_command_wrote_into_its_stack(
    mosquitto: MosquittoServer, influxd: InfluxdServer, tmp_path: Path
) -> None:
    """`smartplace lorawan bridge` with no --output writes into the stack's bridges/, and the
    broker `smartplace up` starts carries that application's uplinks to ingest."""
    api_key = "NNSXS." + secrets.token_hex(20)
    (tmp_path / "tts").mkdir()
    standin = StandInServer(mosquitto.binary, tmp_path / "tts", api_key)
    key_file = tmp_path / "api-key"
    key_file.write_text(api_key + "\n")
    stack_dir = tmp_path / ".smartplace"
    env = {"SMARTPLACE_STACK_DIR": str(stack_dir)}
    try:
        wrote = run_smartplace(
            env,
            "lorawan",
            "bridge",
            "--address",
            f"127.0.0.1:{standin.port}",
            "--api-key-file",
            str(key_file),
            "--application",
            APPLICATION,
            "--ca-file",
            str(standin.ca),
        )
        assert wrote.returncode == 0, wrote.stderr
        bridge_file = stack_dir / "bridges" / "tts-town-bins.conf"
        assert bridge_file.stat().st_mode & 0o777 == 0o600
        assert (stack_dir / "bridges").stat().st_mode & 0o777 == 0o700
        assert bridge_file.read_text() == render_tts_bridge(
            TtsBridge(f"127.0.0.1:{standin.port}", APPLICATION, key_file, standin.ca)
        )
        started = run_smartplace(env, "up")
        assert started.returncode == 0, started.stderr
        wait_for(
            lambda: "Received SUBSCRIBE from smartplace-bridge-town-bins" in standin.log_text(),
            "the stack's broker bridged to the stand-in",
        )
        # ingest as a person would run it beside the stack: its settings from stack.toml
        import tomllib

        from smartplace.config import STACK_FILE_NAME

        stack = tomllib.loads((stack_dir / STACK_FILE_NAME).read_text())
        settings = Settings(
            mqtt=stack["mqtt"],
            influx=stack["influx"],
            ingest=IngestSettings(
                batch_max_wait_s=0.05, require_registered_devices=False, http_port=0
            ),
            registry_file=stack_dir / "registry.db",
            stack_dir=stack_dir,
        )
        device = f"bin-up{secrets.token_hex(3)}"
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        tts = tts_publisher(standin, api_key)
        ingest = RunningIngest(settings)
        ingest.start()
        try:
            for f_cnt in range(1, 21):
                moment = start + timedelta(minutes=f_cnt)
                topic = f"v3/{APPLICATION}/devices/{device}/up"
                tts.publish(topic, uplink(device, f_cnt, moment), qos=0).wait_for_publish(10)
            ingest.wait_for_received(20)
        finally:
            ingest.close()
            tts.loop_stop()
            tts.disconnect()
        with InfluxClient(settings.influx) as influx:
            stored = [p for p in points(influx, "raw", "bin") if p["device_id"] == device]
        assert sorted(p["distance_mm"] for p in stored) == [300.0 + f for f in range(1, 21)]
    finally:
        run_smartplace(env, "up", "--stop")
        standin.stop()
