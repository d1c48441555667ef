"""One device's credentials must not let it fill the broker with retained messages.

A device's ACL is ``{prefix}/{kind}/{device_id}/#``: any depth below its own prefix. Each
distinct topic keeps one retained message, so one stolen login can store as many as it
likes. Seen against ``smartplace up``: 300 retained messages of 1 MiB less 1 KiB, on
``.../lamp-0001/junk/{i}``, took mosquitto from 8 to 309 MiB resident and its
``mosquitto.db`` to 314,300,298 bytes, and all 300 are sent again to every subscriber of
``{prefix}/#`` (ingest) at each of its subscriptions. A device may now publish only on its
three leaves (reading, status, senml), so it can retain three messages at most; a publish
elsewhere is refused at the device (PUBACK 0x87).
"""

from __future__ import annotations

import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from .conftest import Stack
from .test_identity import NOT_AUTHORIZED, _provision

pytestmark = [pytest.mark.security, pytest.mark.integration]

DEVICE = "flood-0001"


def _client(stack: Stack, username: str, password: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=paho.MQTTv5)
    client.username_pw_set(username, password)
    client.connect("127.0.0.1", stack.mqtt_port)
    return client


def test_a_device_cannot_retain_messages_outside_its_three_leaves(
    stack: Stack, tmp_path: Path
) -> None:
    secret = _provision(stack, tmp_path, [DEVICE])[DEVICE]
    device = _client(stack, DEVICE, secret)
    answers: list[int] = []
    device.on_publish = lambda _c, _u, _mid, reason, _p: answers.append(reason.value)
    device.loop_start()
    topic = f"smartplace/air_quality/{DEVICE}/junk/0"
    device.publish(topic, b"x" * 1000, qos=1, retain=True).wait_for_publish(30)
    device.loop_stop()
    device.disconnect()
    assert answers == [NOT_AUTHORIZED]

    retained: list[str] = []
    admin = _client(stack, "smartplace-admin", stack.password("admin"))
    admin.on_message = lambda _c, _u, message: retained.append(message.topic)
    admin.subscribe(f"smartplace/air_quality/{DEVICE}/#", qos=1)
    deadline = time.monotonic() + 3  # retained messages come straight after the SUBACK
    while time.monotonic() < deadline:
        admin.loop(0.1)
    admin.disconnect()
    assert retained == []
