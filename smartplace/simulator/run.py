"""Drives a simulated fleet in real time: every device reports once per interval."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import orjson

from smartplace.config import Settings
from smartplace.schemas import reading_topic
from smartplace.simulator.air_quality import AirQualityGenerator
from smartplace.simulator.publisher import Publisher

log = logging.getLogger(__name__)


def air_quality_device_ids(count: int) -> list[str]:
    return [f"aq-{i:04d}" for i in range(1, count + 1)]


def simulate(
    settings: Settings,
    devices: int,
    interval_s: float,
    duration_s: float | None,
    stop: threading.Event,
    publisher: Publisher | None = None,
    seed: int = 0,
) -> int:
    """Publish until ``duration_s`` passes or ``stop`` is set; returns readings published."""
    generator = AirQualityGenerator(air_quality_device_ids(devices), seed=seed)
    own_publisher = publisher is None
    publisher = publisher or Publisher(settings.mqtt, client_id=f"smartplace-simulator-{seed}")
    if own_publisher:
        publisher.start()
    prefix = settings.mqtt.topic_prefix
    started = time.monotonic()
    next_tick = started
    try:
        while not stop.is_set():
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            for reading in generator.readings(datetime.now(UTC)):
                topic = reading_topic(prefix, "air_quality", reading["device_id"])
                publisher.publish(topic, orjson.dumps(reading))
            next_tick += interval_s
            stop.wait(max(0.0, next_tick - time.monotonic()))
        publisher.flush()
    finally:
        if own_publisher:
            publisher.stop()
    log.info("simulator published=%d", publisher.published)
    return publisher.published
