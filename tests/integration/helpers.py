"""Small helpers shared by integration tests: publishing readings, reading points back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

import orjson

from smartplace.accounts import simulator_client_id
from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.publisher import Publisher
from smartplace.schemas import reading_topic
from tests.chaos.harness import Reading, deterministic_stream
from tests.conftest import RunningIngest

Message = tuple[str, bytes]


def reading_message(
    settings: Settings, device_id: str, body: Any, kind: str = "air_quality"
) -> Message:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return reading_topic(settings.mqtt.topic_prefix, kind, device_id), payload


def publish_all(
    settings: Settings, messages: Iterable[Message], client_id: str = "test-publisher"
) -> int:
    """Publish at QoS 1 and return once the broker acknowledged every message."""
    count = 0
    # The simulator's account is bound to one client id: its user name.
    with Publisher(
        settings.mqtt, simulator_client_id(settings.mqtt), settings.mqtt.simulator_account()
    ) as publisher:
        for topic, payload in messages:
            publisher.publish(topic, payload)
            count += 1
        assert publisher.flush(30), "the broker did not acknowledge every publish"
    return count


def points(influx: InfluxClient, retention_policy: str, measurement: str) -> list[dict[str, Any]]:
    """Every point of a measurement, with its tags, fields (None dropped) and time in ns."""
    rows = influx.query_rows(f'SELECT * FROM "{retention_policy}"."{measurement}" GROUP BY *')
    return [{key: value for key, value in row.items() if value is not None} for row in rows]


def run_smartplace(
    env: dict[str, str], *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """The smartplace command as a person runs it, with ``env`` over this process's own."""
    return subprocess.run(
        [sys.executable, "-m", "smartplace", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def one_shard_start(span_s: int) -> int:
    """An epoch second from which ``span_s`` seconds, all past, lie in one UTC day: one shard
    of the 30-day raw retention policy. A field type conflict is per shard, so a test of one
    must not straddle midnight."""
    now = int(time.time())
    start = now - span_s
    if start // 86_400 != now // 86_400:
        start = now - now % 86_400 - span_s - 1  # the end of yesterday
    return start


def restart_stream(
    prefix: str, devices: int, per_device: int, step_s: int
) -> tuple[list[Reading], list[tuple[str, bytes]]]:
    """The chaos harness's deterministic air-quality stream, ending now inside one shard, and
    the MQTT messages that carry it."""
    span_s = per_device * step_s
    readings = deterministic_stream(
        devices, per_device, step_s, one_shard_start(span_s + 60) + span_s
    )
    return readings, [
        (reading_topic(prefix, "air_quality", r.device_id), r.payload()) for r in readings
    ]


def run_workers(
    each: list[Settings], messages: list[Message], receives: list[int], timeout_s: float = 60
) -> None:
    """Ingest workers (one ``RunningIngest`` per settings) up, ``messages`` published, and
    stopped once each has received its count; worker 0 stops last, so its flush lands last."""
    workers = [RunningIngest(s) for s in each]
    for worker in workers:
        worker.start()
    try:
        publish_all(each[0], messages)
        for worker, count in zip(workers, receives, strict=True):
            worker.wait_for_received(count, timeout_s=timeout_s)
    finally:
        for worker in reversed(workers):
            worker.close()
    assert all(worker.error is None for worker in workers)
