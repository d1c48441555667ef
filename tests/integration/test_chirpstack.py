"""ChirpStack v4 uplink events for both Milesight profiles, through the real broker into the
real InfluxDB: the same profiles as The Things Stack's, the device found by its DevEUI
through the registry or by its ChirpStack name. Published straight to the project's broker,
and published on a stand-in for ChirpStack's own broker bridged into it, also while the
bridge's link is cut."""

from __future__ import annotations

import base64
import re
import secrets
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from smartplace.config import InfluxSettings, IngestSettings, Settings
from smartplace.devices.model import DeviceRecord
from smartplace.devices.provisioning import announce
from smartplace.influx import InfluxClient
from smartplace.ingest.receive.shard import device_shard, shard_of, worker_settings
from smartplace.lorawan.bridge import ChirpstackBridge, render_chirpstack_bridge
from smartplace.stack import InfluxdServer, MosquittoServer
from smartplace.stack.mosquitto import provisioned_mqtt

from ..conftest import RunningIngest
from .helpers import Message, points, publish_all, run_smartplace, run_workers
from .tts_standin import LinkRelay, StandInServer, bridged_broker, tts_publisher, wait_for

pytestmark = pytest.mark.integration


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(
    app: str,
    eui: str,
    name: str,
    profile: str,
    f_cnt: int,
    moment: datetime,
    frm: bytes,
    obj: dict[str, Any] | None = None,
) -> Message:
    body: dict[str, Any] = {
        "deduplicationId": secrets.token_hex(16),
        "time": iso(moment),
        "deviceInfo": {
            "tenantId": "t",
            "applicationId": app,
            "applicationName": "town",
            "deviceProfileName": profile,
            "deviceName": name,
            "devEui": eui,
        },
        "devAddr": "01fa2b3c",
        "fCnt": f_cnt,
        "fPort": 85,
        "data": base64.b64encode(frm).decode(),
        "rxInfo": [{"gatewayId": "0016c001ff10a235", "rssi": -99, "snr": 6.0}],
    }
    if obj is not None:
        body["object"] = obj
    return f"application/{app}/device/{eui}/event/up", orjson.dumps(body)


def both_profiles(app: str, tag: str) -> tuple[list[DeviceRecord], list[Message]]:
    """An EM310-UDL bin registered by its DevEUI (ChirpStack calls it something else) and a
    VS133 counter registered by its ChirpStack name, five uplink events each, each with the
    ``object`` its Milesight-IoT/SensorDecoders codec decodes from its bytes (ingest refuses
    an event whose object disagrees with its bytes as payload_mismatch)."""
    bin_eui, counter_eui = f"24e1247{tag}00a", f"24e1247{tag}00b"
    bin_id, counter_id = f"bin-cs{tag}", f"ff-cs{tag}"
    records = [
        DeviceRecord(device_id=bin_id, kind="bin", site="test-site", metadata={"dev_eui": bin_eui}),
        DeviceRecord(device_id=counter_id, kind="footfall", site="test-site"),
    ]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    messages: list[Message] = []
    for f in range(1, 6):
        moment = start + timedelta(minutes=5 * f)
        distance = 1100 - 100 * f
        frm = struct.pack("<BBBBBHBBB", 0x01, 0x75, 90, 0x03, 0x82, distance, 0x04, 0x00, 0)
        obj = {"battery": 90, "distance": distance, "position": "normal"}
        messages.append(
            event(app, bin_eui, "Library bin", "milesight-em310-udl", f, moment, frm, obj)
        )
        total_in, total_out = 1000 + 12 * f, 500 + 5 * f
        totals = struct.pack("<BBIBBI", 0x03, 0xD2, total_in, 0x04, 0xD2, total_out)
        # Milesight's vs133-decoder.js as ChirpStack's codec: flat names, line_1_total_in
        counted = {"line_1_total_in": total_in, "line_1_total_out": total_out}
        messages.append(event(app, counter_eui, counter_id, "vs133", f, moment, totals, counted))
    return records, messages


def assert_both_profiles_landed(influx: InfluxClient, tag: str) -> None:
    bin_id, counter_id = f"bin-cs{tag}", f"ff-cs{tag}"
    bins = sorted(
        (p["time"], p["distance_mm"], p["fill_pct"])
        for p in points(influx, "raw", "bin")
        if p["device_id"] == bin_id
    )
    assert [(d, fill) for _t, d, fill in bins] == [
        (1100.0 - 100 * f, round(100 * f / 850 * 100, 2)) for f in range(1, 6)
    ]
    counts = sorted(
        (
            p["time"],
            p["count_in"],
            p["count_out"],
            p["interval_s"],
            p["line_1_total_in"],
            p["line_1_total_out"],
        )
        for p in points(influx, "raw", "footfall")
        if p["device_id"] == counter_id
    )
    # the first frame is the baseline; each total as the codec's object gave it
    assert [c[1:] for c in counts] == [
        (12, 5, 300, 1000 + 12 * f, 500 + 5 * f) for f in range(2, 6)
    ]
    statuses = [
        p for p in points(influx, "raw", "device_status") if p["device_id"] in (bin_id, counter_id)
    ]
    assert len(statuses) == 10
    assert not [
        p
        for p in points(influx, "raw", "ingest_rejects")
        if tag in p.get("device_id", "") or tag in p.get("topic", "")
    ]


def test_chirpstack_events_of_both_milesight_profiles_land(
    registered_settings: Settings, influx: InfluxClient, running_ingest: RunningIngest
) -> None:
    tag = secrets.token_hex(3)
    records, messages = both_profiles(f"app-{tag}", tag)
    announce(registered_settings, records)
    running_ingest.wait_for_received(publish_all(registered_settings, messages) + len(records))
    assert_both_profiles_landed(influx, tag)


@dataclass
class ChirpstackBridged:
    """The project's broker bridged, with the command's file, to a stand-in for ChirpStack's."""

    settings: Settings
    standin: StandInServer
    relay: LinkRelay
    """The bridge's network link to the stand-in, which a test can cut and restore."""
    password: str
    application: str
    bridge_id: str


@pytest.fixture
def chirpstack_bridged(
    mosquitto: MosquittoServer, influxd: InfluxdServer, tmp_path: Path
) -> Iterator[ChirpstackBridged]:
    """ChirpStack publishes its events to a broker of its own, a mosquitto in
    chirpstack/chirpstack-docker's docker-compose.yml (eclipse-mosquitto:2): here a second
    mosquitto, with TLS (a test CA) and a password login, as a council's would be across a
    network. It is the TTS stand-in's, so behind its MQTT 3.1.1 gate, which ChirpStack's
    mosquitto would not have; the bridge speaks 3.1.1 to either. The bridge reaches it
    through a TCP relay (the network between the two brokers), which passes TLS through
    untouched. The project's broker takes the events through the file ``smartplace lorawan
    bridge --server chirpstack`` writes."""
    password = secrets.token_urlsafe(16)
    (tmp_path / "chirpstack").mkdir()
    standin = StandInServer(mosquitto.binary, tmp_path / "chirpstack", password, "smartplace")
    relay = LinkRelay(standin.port)
    password_file = tmp_path / "chirpstack-broker-password.txt"
    password_file.write_text(password + "\n")
    application = str(uuid.uuid4())
    bridge_file = tmp_path / "chirpstack.conf"
    wrote = run_smartplace(
        {},
        "lorawan",
        "bridge",
        "--server",
        "chirpstack",
        "--output",
        str(bridge_file),
        "--address",
        f"127.0.0.1:{relay.port}",
        "--username",
        "smartplace",
        "--api-key-file",
        str(password_file),
        "--application",
        application,
        "--ca-file",
        str(standin.ca),
    )
    assert wrote.returncode == 0, wrote.stderr
    assert bridge_file.read_text() == render_chirpstack_bridge(
        ChirpstackBridge(
            f"127.0.0.1:{relay.port}", application, "smartplace", password_file, standin.ca
        )
    )
    broker = bridged_broker(mosquitto, tmp_path / "project", bridge_file)
    broker.start()
    try:
        mqtt = provisioned_mqtt(broker, "csbridge")
        settings = Settings(
            mqtt=mqtt,
            influx=InfluxSettings(
                url=influxd.url, database=f"test_{mqtt.topic_prefix.removeprefix('csbridge-')}"
            ),
            ingest=IngestSettings(
                batch_max_wait_s=0.05, require_registered_devices=True, http_port=0
            ),
            registry_file=tmp_path / "registry.db",
        )
        bridge_id = f"smartplace-bridge-{application.split('-', 1)[0]}"
        wait_for(
            lambda: bridge_subscriptions(standin, bridge_id) == 1,
            "the bridge subscribed at the ChirpStack stand-in",
        )
        login = re.search(
            rf"as {bridge_id} \(p(\d+), c(\d), k\d+, u'([^']+)'\)", standin.log_text()
        )
        # MQTT 3.1.1 (mosquitto's enum 2), a persistent session (c0), the configured user
        assert login is not None
        assert login.groups() == ("2", "0", "smartplace")
        yield ChirpstackBridged(settings, standin, relay, password, application, bridge_id)
    finally:
        broker.stop()
        relay.close()
        standin.stop()


def bridge_subscriptions(standin: StandInServer, bridge_id: str) -> int:
    return standin.log_text().count(f"Received SUBSCRIBE from {bridge_id}")


@pytest.mark.slow
def test_chirpstack_events_cross_the_generated_bridge_from_chirpstacks_broker(
    chirpstack_bridged: ChirpstackBridged,
) -> None:
    """Through the bridge the command wrote (chirpstack_bridged), the events are published
    on the stand-in for ChirpStack's broker at QoS 1 (chirpstack.toml's
    ``[integration.mqtt] qos = 1``, as the README asks) and land through ingest exactly."""
    bridged = chirpstack_bridged
    tag = secrets.token_hex(3)
    records, messages = both_profiles(bridged.application, tag)
    announce(bridged.settings, records)
    ingest = RunningIngest(bridged.settings)
    ingest.start()
    chirpstack = tts_publisher(bridged.standin, bridged.password)  # 3.1.1, as ChirpStack's is
    try:
        for topic, payload in messages:
            chirpstack.publish(topic, payload, qos=1).wait_for_publish(10)
        ingest.wait_for_received(len(messages) + len(records))
    finally:
        chirpstack.loop_stop()
        chirpstack.disconnect()
        ingest.close()
    with InfluxClient(bridged.settings.influx) as influx:
        assert_both_profiles_landed(influx, tag)


@pytest.mark.slow
def test_chirpstack_events_published_while_the_bridge_link_is_down_land_once_it_returns(
    chirpstack_bridged: ChirpstackBridged,
) -> None:
    """The README's promise: the bridge's persistent session at QoS 1 has ChirpStack's broker
    keep the events published while the link is down. Cut: the relay between the two brokers
    (LinkRelay.cut closes the bridge's connection and refuses its reconnections) while both
    brokers run on, as a network outage does. Not the stand-in's process: it has no
    persistence, so a restart would lose every session whatever the bridge asked for, which
    says something of ChirpStack's broker's setup, not of the bridge; not the project's
    broker: that would stop ingest's broker as well, not only the link. The first frame of
    each device crosses before the cut; frames 2-5 of each are published at QoS 1 during it
    and acknowledged by the stand-in; the link comes back on the same port."""
    bridged = chirpstack_bridged
    standin, bridge_id = bridged.standin, bridged.bridge_id
    tag = secrets.token_hex(3)
    records, messages = both_profiles(bridged.application, tag)
    announce(bridged.settings, records)
    ingest = RunningIngest(bridged.settings)
    ingest.start()
    chirpstack = tts_publisher(standin, bridged.password)
    try:
        for topic, payload in messages[:2]:  # frame 1 of the bin and of the counter
            chirpstack.publish(topic, payload, qos=1).wait_for_publish(10)
        ingest.wait_for_received(2 + len(records))
        bridged.relay.cut()
        wait_for(
            lambda: (
                f"Client {bridge_id} closed its connection" in standin.log_text()
                or f"Socket error on client {bridge_id}" in standin.log_text()
            ),
            "the stand-in saw the bridge go",
        )
        for topic, payload in messages[2:]:
            chirpstack.publish(topic, payload, qos=1).wait_for_publish(10)
        time.sleep(1)
        assert ingest.service.stats.received == 2 + len(records)  # nothing crossed the cut
        bridged.relay.restore()
        wait_for(
            lambda: bridge_subscriptions(standin, bridge_id) == 2,
            "the bridge reconnected after the link came back",
            timeout_s=120,
        )
        ingest.wait_for_received(len(messages) + len(records))
        time.sleep(2)  # a redelivered event has had its chance to land twice
    finally:
        chirpstack.loop_stop()
        chirpstack.disconnect()
        ingest.close()
    # each of the 10 events crossed the link once
    assert standin.log_text().count(f"Sending PUBLISH to {bridge_id}") == len(messages)
    with InfluxClient(bridged.settings.influx) as influx:
        assert_both_profiles_landed(influx, tag)


TWO_WORKERS_TAG = "aa0001"
"""bin-csaa0001 and ff-csaa0001 hash to worker 0 of 2, their DevEUIs to worker 1."""


def two_workers(settings: Settings, tmp_path: Path) -> Settings:
    ingest = settings.ingest.model_copy(update={"spool_dir": tmp_path / "spool", "workers": 2})
    return settings.model_copy(update={"ingest": ingest})


def run_two_workers(base: Settings, messages: list[Message], worker_0_receives: int) -> None:
    """Both workers up, ``messages`` published, stopped once worker 0 has received its count."""
    run_workers([worker_settings(base, i) for i in (0, 1)], messages, [worker_0_receives, 0])


def test_with_two_workers_chirpstack_events_go_to_their_registered_devices_worker(
    registered_settings: Settings, influx: InfluxClient, tmp_path: Path
) -> None:
    """A ChirpStack topic names a DevEUI; the registry record is the device id's. Taken by
    the DevEUI's worker, which never saw the record, every event was refused as
    unknown_device (10 of 10)."""
    records, messages = both_profiles(f"app-{TWO_WORKERS_TAG}", TWO_WORKERS_TAG)
    base = two_workers(registered_settings, tmp_path)
    by_id = {device_shard(r.device_id, 2) for r in records}
    by_eui = {shard_of(base.mqtt.topic_prefix, topic, 2) for topic, _ in messages}
    assert (by_id, by_eui) == ({0}, {1})
    announce(base, records)
    run_two_workers(base, messages, len(messages) + len(records))
    assert_both_profiles_landed(influx, TWO_WORKERS_TAG)


def test_with_two_workers_chirpstack_events_queued_while_ingest_was_down_land(
    registered_settings: Settings, influx: InfluxClient, tmp_path: Path
) -> None:
    """At a restart the session's backlog comes before the retained registry records: the
    events are routed by the devices the saved state knows (0 of 5 bin events landed)."""
    records, messages = both_profiles(f"app-{TWO_WORKERS_TAG}", TWO_WORKERS_TAG)
    base = two_workers(registered_settings, tmp_path)
    announce(base, records)
    run_two_workers(base, [], len(records))  # the sessions, and each worker's saved state
    publish_all(base, messages)  # while both workers are down
    run_two_workers(base, [], len(messages) + len(records))
    bin_id = f"bin-cs{TWO_WORKERS_TAG}"
    bins = [p["distance_mm"] for p in points(influx, "raw", "bin") if p["device_id"] == bin_id]
    assert sorted(bins) == [1100.0 - 100 * f for f in range(5, 0, -1)]
