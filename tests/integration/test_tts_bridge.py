"""The Things Stack over MQTT, the supported way: the project's broker bridged to TTS.

A second mosquitto stands in for TTS's MQTT server: TLS with a CA made here, logins as
``{application}@{tenant}`` with an API key. Stock mosquitto cannot refuse MQTT 5, so the
test checks from its log that the bridge spoke 3.1.1 (mosquitto logs it as p2; MQTT 5 as p5), as TTS needs.
The project's broker is set up as the stack sets it up (BROKER_SETTINGS, so
upgrade_outgoing_qos), plus the file ``smartplace lorawan bridge`` writes. 1,000 uplinks
published at QoS 0, as TTS publishes, with ingest restarted twice mid-stream: every one
lands in InfluxDB, once.
"""

from __future__ import annotations

import base64
import getpass
import re
import secrets
import ssl
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest

from smartplace.config import InfluxSettings, IngestSettings, Settings
from smartplace.influx import InfluxClient
from smartplace.lorawan.bridge import TtsBridge, render_tts_bridge
from smartplace.stack import InfluxdServer, MosquittoServer, free_port
from smartplace.stack.mosquitto import provisioned_mqtt

from ..conftest import RunningIngest
from .helpers import points, run_smartplace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APPLICATION = "town-bins@council"
UPLINKS = 1000
DEVICES = 10


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

    def __init__(self, binary: Path, directory: Path, api_key: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.ca, cert, key = make_ca(directory)
        passwords = directory / "passwords"
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(passwords), APPLICATION, api_key],
            check=True,
            capture_output=True,
        )
        self.log = directory / "standin.log"
        config = directory / "standin.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n"
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

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def wait_for(predicate: object, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout_s} s")


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
    broker = MosquittoServer(
        mosquitto.binary,
        tmp_path / "project",
        free_port(),
        ("bridge-admin", secrets.token_urlsafe(12)),
        mosquitto.plugin,
        extra_config=bridge_file.read_text(),
    )
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


def test_a_thousand_uplinks_through_the_bridge_land_once_with_ingest_restarted_twice(
    bridged: tuple[Settings, StandInServer],
) -> None:
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
    tts = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id="tts-standin-publisher", protocol=paho.MQTTv311
    )
    tts.username_pw_set(APPLICATION, (standin.directory / "api-key").read_text().strip())
    tts.tls_set(ca_certs=str(standin.ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    tts.connect("127.0.0.1", standin.port)
    tts.loop_start()

    def publish(chunk: list[tuple[str, bytes]]) -> None:
        for topic, payload in chunk:
            tts.publish(topic, payload, qos=0).wait_for_publish(10)  # TTS publishes at QoS 0

    with InfluxClient(settings.influx) as influx:

        def landed() -> int:
            try:
                return sum(1 for p in points(influx, "raw", "bin") if p["device_id"] in devices)
            except Exception:
                return 0

        ingest = RunningIngest(settings)
        ingest.start()
        publish(messages[:250])
        publish(messages[250:400])
        ingest.close()  # restart 1: stopped mid-stream, uplinks keep coming
        publish(messages[400:550])
        ingest = RunningIngest(settings)
        ingest.start()
        publish(messages[550:700])
        ingest.close()  # restart 2
        publish(messages[700:850])
        ingest = RunningIngest(settings)
        ingest.start()
        publish(messages[850:])
        try:
            wait_for(lambda: landed() >= UPLINKS, f"{UPLINKS} uplinks landed", timeout_s=120)
        finally:
            ingest.close()
            tts.loop_stop()
            tts.disconnect()
        stored = [p for p in points(influx, "raw", "bin") if p["device_id"] in devices]
    assert len(stored) == UPLINKS
    assert sorted((p["device_id"], p["distance_mm"]) for p in stored) == sorted(
        (devices[i % DEVICES], float(300 + i // DEVICES + 1)) for i in range(UPLINKS)
    )
