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

import re
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from smartplace.config import InfluxSettings, IngestSettings, Settings
from smartplace.influx import InfluxClient
from smartplace.lorawan.bridge import TtsBridge, render_tts_bridge
from smartplace.stack import InfluxdServer, MosquittoServer, free_port
from smartplace.stack.mosquitto import provisioned_mqtt

from ..conftest import RunningIngest
from .helpers import points, run_smartplace
from .tts_standin import APPLICATION, StandInServer, tts_publisher, uplink, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UPLINKS = 1000
DEVICES = 10


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
