"""A LoRaWAN uplink on one device's topic that names another device in its body.

Whoever can publish on one device's uplink topic must not be able to touch another
device's LoRaWAN state. Before the state was keyed on the topic's device, 30 forged
frames naming a bin took its duplicate-frame memory (30 of 30 genuine frames then
refused) and a forged counter frame from the future took a counter's baseline (10 of 10
genuine counts refused).

Against a real stack (``smartplace up``, devices provisioned with the CLI, ingest as a
process). A device's own credentials cannot publish an uplink at all: a device may publish
only below its own ``{prefix}/{kind}/{device_id}/`` (devices.dynsec), so the broker refuses
the forged uplinks on its ``v3/`` topic (0x87), and a reading on its own topic that names
another device is refused as topic_device_mismatch. Who can publish uplinks (the TTS
webhook receiver's account, for a request on the attacker's device) gets every forged frame
refused as topic_device_mismatch. Every genuine frame lands: counted in InfluxDB, exactly.
"""

from __future__ import annotations

import base64
import secrets
import struct
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from smartplace.influx import InfluxClient
from smartplace.publisher import gateway_publisher

from ..integration.helpers import Message, points
from .conftest import IngestRun, Stack
from .test_identity import NOT_AUTHORIZED, _mqtt, _provision, _reader

pytestmark = [pytest.mark.integration, pytest.mark.security]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def uplink(body_device: str, f_cnt: int, moment: datetime, model_id: str, frm: bytes) -> bytes:
    return orjson.dumps(
        {
            "end_device_ids": {"device_id": body_device},
            "received_at": iso(moment),
            "uplink_message": {
                "session_key_id": "s1",
                "f_cnt": f_cnt,
                "frm_payload": base64.b64encode(frm).decode(),
                "version_ids": {"brand_id": "milesight-iot", "model_id": model_id},
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -104, "snr": 2.5}],
            },
        }
    )


def em310(distance_mm: int) -> bytes:
    return struct.pack("<BBBBBH", 0x01, 0x75, 90, 0x03, 0x82, distance_mm)


def vs133(total_in: int, total_out: int) -> bytes:
    return struct.pack("<BBIBBI", 0x03, 0xD2, total_in, 0x04, 0xD2, total_out)


def device_publishes(
    stack: Stack, device_id: str, secret: str, messages: list[Message]
) -> list[int]:
    """Publish as the device itself (its account, its client id); the PUBACK reason codes.

    One connection a message: the connection does not outlive a refused publish (mosquitto
    logs a bad socket read/write on it and drops it)."""
    answers: list[int] = []
    for topic, payload in messages:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=paho.MQTTv5)
        client.username_pw_set(device_id, secret)
        client.on_publish = lambda _c, _u, _mid, reason, _p: answers.append(reason.value)
        client.connect("127.0.0.1", stack.mqtt_port)
        client.loop_start()
        deadline = time.monotonic() + 10
        while not client.is_connected():
            assert time.monotonic() < deadline, f"{device_id} did not connect"
            time.sleep(0.01)
        client.publish(topic, payload, qos=1).wait_for_publish(30)
        client.loop_stop()
        client.disconnect()
    return answers


def stored(influx: InfluxClient, measurement: str, tag: str) -> list[dict[str, Any]]:
    return [p for p in points(influx, "raw", measurement) if tag in p.get("device_id", "")]


def test_an_uplink_naming_another_device_is_refused_and_leaves_that_devices_frames_alone(
    stack: Stack, tmp_path: Path
) -> None:
    tag = secrets.token_hex(3)
    attacker, bin_victim, counter_victim = f"bin-atk{tag}", f"bin-vic{tag}", f"ff-vic{tag}"
    device_secrets = _provision(stack, tmp_path, [attacker, bin_victim], kind="bin")
    device_secrets |= _provision(stack, tmp_path, [counter_victim], kind="footfall")
    app = f"v3/town{tag}@ttn/devices"
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=50)

    forged: list[Message] = [
        # the bin's session and frame counters 1..30, on the attacker's own topic
        (f"{app}/{attacker}/up", uplink(bin_victim, f, start, "em310-udl", em310(500)))
        for f in range(1, 31)
    ]
    # a counter frame from the future: had it become the baseline, every genuine frame
    # would be older than it, refused as out of order
    forged.append(
        (
            f"{app}/{attacker}/up",
            uplink(counter_victim, 999, now + timedelta(minutes=4), "vs133", vs133(10**6, 10**6)),
        )
    )
    genuine: list[Message] = [
        (
            f"{app}/{bin_victim}/up",
            uplink(bin_victim, f, start + timedelta(seconds=60 * f), "em310-udl", em310(300 + f)),
        )
        for f in range(1, 31)
    ]
    # 11 totals 60 s apart: a baseline and 10 counts of 3 in, 1 out each
    genuine += [
        (
            f"{app}/{counter_victim}/up",
            uplink(
                counter_victim,
                f,
                start + timedelta(seconds=60 * f),
                "vs133",
                vs133(100 + 3 * f, 50 + f),
            ),
        )
        for f in range(1, 12)
    ]
    naming = orjson.dumps({"device_id": bin_victim, "ts": int(start.timestamp()), "fill_pct": 9})
    ingest = IngestRun(stack)
    ingest.start()
    try:
        # The device itself: no uplink topic is its own, and its own topic names only it.
        assert device_publishes(stack, attacker, device_secrets[attacker], forged) == [
            NOT_AUTHORIZED
        ] * len(forged)
        own = (f"smartplace/bin/{attacker}/reading", naming)
        assert device_publishes(stack, attacker, device_secrets[attacker], [own]) == [0]
        # Who may publish uplinks: the same forged frames, then the victims' own.
        with gateway_publisher(_mqtt(stack), "webhook") as webhook:
            for topic, payload in forged + genuine:
                webhook.publish(topic, payload)
            assert webhook.flush(30)

        with _reader(stack) as influx:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (
                len(stored(influx, "bin", tag)) < 30
                or len(stored(influx, "footfall", tag)) < 10
                or len(stored(influx, "ingest_rejects", tag)) < len(forged) + 1
            ):
                time.sleep(0.2)
            bins = [p for p in stored(influx, "bin", tag) if p["device_id"] == bin_victim]
            counts = [
                p for p in stored(influx, "footfall", tag) if p["device_id"] == counter_victim
            ]
            rejects = stored(influx, "ingest_rejects", tag)
            assert not [p for p in stored(influx, "bin", tag) if p["device_id"] == attacker]
    finally:
        assert ingest.stop() == 0
    assert sorted(p["distance_mm"] for p in bins) == [300 + f for f in range(1, 31)]
    assert [(p["count_in"], p["count_out"], p["interval_s"]) for p in counts] == [(3, 1, 60)] * 10
    assert Counter((p["reason"], p["device_id"], p["topic"]) for p in rejects) == {
        ("topic_device_mismatch", attacker, f"{app}/{attacker}/up"): 31,
        ("topic_device_mismatch", attacker, f"smartplace/bin/{attacker}/reading"): 1,
    }
