"""Ingest's MQTT client against real mosquitto: retained messages at each (re)subscribe, and
two clients with one client id."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from smartplace.accounts import simulator_client_id
from smartplace.config import Settings
from smartplace.devices.model import DeviceRecord
from smartplace.devices.provisioning import announce
from smartplace.influx import InfluxClient
from smartplace.ingest.receive.subscriber import MqttSubscriber
from smartplace.ingest.service import subscriptions
from smartplace.publisher import Publisher
from tests.conftest import RunningIngest

from .helpers import points, publish_all, reading_message

pytestmark = pytest.mark.integration


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _wait_for(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.security  # a device retaining a reading had it ingested again at every reconnect
def test_a_retained_reading_is_not_ingested_at_any_subscribe_but_the_registry_still_is(
    registered_settings: Settings, influx: InfluxClient
) -> None:
    settings = registered_settings
    announce(settings, [DeviceRecord(device_id="aq-0600", kind="air_quality", site="s1")])
    topic, old = reading_message(settings, "aq-0600", {"ts": _now_iso(), "pm25_ugm3": 9.0})
    with Publisher(
        settings.mqtt, simulator_client_id(settings.mqtt), settings.mqtt.simulator_account()
    ) as publisher:
        publisher.publish(topic, old, retain=True)
        assert publisher.flush(30)

    for run in (1, 2):  # the second resumes the session and subscribes again
        ingest = RunningIngest(settings)
        ingest.start()
        try:
            service = ingest.service
            _wait_for(lambda: service.pipeline.directory.get("aq-0600") is not None)  # noqa: B023
            if run == 1:
                live = reading_message(settings, "aq-0600", {"ts": _now_iso(), "pm25_ugm3": 4.0})
                ingest.wait_for_received(1 + publish_all(settings, [live]))
            else:
                ingest.wait_for_received(1)  # the registry record, handed over again
            assert ingest.service.stats.retained_skipped == 1
            assert ingest.service.stats.rejected_by_reason == {}
        finally:
            ingest.close()
    assert [(p["device_id"], p["pm25_ugm3"]) for p in points(influx, "raw", "air_quality")] == [
        ("aq-0600", 4.0)
    ]


def test_two_clients_with_one_client_id_are_named_in_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    limit, payload = settings.ingest.max_packet_bytes(), settings.ingest.max_payload_bytes
    first = MqttSubscriber(settings.mqtt, subscriptions(settings.mqtt), limit, payload)
    second = MqttSubscriber(settings.mqtt, subscriptions(settings.mqtt), limit, payload)
    first.start()
    second.start()  # takes the session over
    try:
        deadline = time.monotonic() + 20
        while first.connected:
            assert time.monotonic() < deadline
            first.take(10, 1 << 20, 0.1)
    finally:
        first.stop()
        second.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[0].startswith(
        "mqtt disconnected (the broker closed the connection without a DISCONNECT (mosquitto"
        f" does so when another client connects with our client id {settings.mqtt.client_id!r}))"
    )
