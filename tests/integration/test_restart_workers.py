"""Ingest moved from one worker to two mid-day, and back: no worker rebuilds, holds or writes
the windows of a device another worker handles, so every 1-minute to 1-day aggregate still
equals the offline recomputation from the stream. (Back to one, the old state is loaded: what
came in meanwhile reaches it as its MQTT session's backlog, which the broker kept.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.receive.shard import shard_of, worker_settings
from tests.chaos.harness import (
    assert_aggregates_exact,
)
from tests.conftest import RunningIngest
from tests.integration.helpers import points, publish_all, restart_stream, run_workers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES, PER_DEVICE, STEP_S = 6, 240, 15  # chaos-000..003 hash to worker 0, 004..005 to 1


def test_one_worker_then_two_never_writes_an_aggregate_from_partial_data(
    settings: Settings, influx: InfluxClient, tmp_path: Path
) -> None:
    prefix = settings.mqtt.topic_prefix
    readings, messages = restart_stream(prefix, DEVICES, PER_DEVICE, STEP_S)
    assert {shard_of(prefix, t, 2) for t, _ in messages} == {0, 1}
    half = len(messages) // 2
    one = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"spool_dir": tmp_path / "spool"})}
    )
    two = one.model_copy(update={"ingest": one.ingest.model_copy(update={"workers": 2})})

    first = RunningIngest(one)
    first.start()
    try:
        publish_all(one, messages[:half])
        first.wait_for_received(half, timeout_s=60)
    finally:
        first.close()
    assert first.error is None

    workers = [RunningIngest(worker_settings(two, index)) for index in (0, 1)]
    for worker in workers:
        worker.start()
    try:
        publish_all(two, messages[half:])
        for index, worker in enumerate(workers):
            mine = sum(1 for t, _ in messages[half:] if shard_of(prefix, t, 2) == index)
            worker.wait_for_received(mine, timeout_s=60)
    finally:
        for worker in reversed(workers):  # worker 0 stops last: its flush lands last
            worker.close()
    assert all(worker.error is None for worker in workers)

    assert_aggregates_exact(influx, readings)
    assert_ledger_exact(influx)


def test_one_worker_then_two_then_one_again_never_writes_an_aggregate_from_partial_data(
    settings: Settings, influx: InfluxClient, tmp_path: Path
) -> None:
    prefix = settings.mqtt.topic_prefix
    readings, messages = restart_stream(prefix, DEVICES, PER_DEVICE, STEP_S)
    third = len(messages) // 3
    one = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"spool_dir": tmp_path / "spool"})}
    )
    two = one.model_copy(update={"ingest": one.ingest.model_copy(update={"workers": 2})})

    _run([one], messages[:third])
    _run([worker_settings(two, 0), worker_settings(two, 1)], messages[third : 2 * third])
    _run([one], messages[2 * third :])

    assert_aggregates_exact(influx, readings)
    assert_ledger_exact(influx)


def _run(each: list[Settings], messages: list[tuple[str, bytes]]) -> None:
    prefix, n = each[0].mqtt.topic_prefix, len(each)
    mine = [sum(1 for t, _ in messages if shard_of(prefix, t, n) == i) for i in range(n)]
    run_workers(each, messages, mine)


def test_two_workers_then_three_never_writes_an_aggregate_from_partial_data(
    settings: Settings, influx: InfluxClient, tmp_path: Path
) -> None:
    # chaos-005 moves from worker 1 to worker 0, chaos-002 from worker 0 to worker 1: each
    # new owner has saved state of its own, but not for the device it takes over.
    prefix = settings.mqtt.topic_prefix
    readings, messages = restart_stream(prefix, DEVICES, PER_DEVICE, STEP_S)
    half = len(messages) // 2
    base = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"spool_dir": tmp_path / "spool"})}
    )
    two = base.model_copy(update={"ingest": base.ingest.model_copy(update={"workers": 2})})
    three = base.model_copy(update={"ingest": base.ingest.model_copy(update={"workers": 3})})

    _run([worker_settings(two, i) for i in range(2)], messages[:half])
    _run([worker_settings(three, i) for i in range(3)], messages[half:])

    assert_aggregates_exact(influx, readings)
    assert_ledger_exact(influx)


def assert_ledger_exact(influx: InfluxClient) -> None:
    """Every device's readings, over its arrival hours, received and written once each: a
    device moved to another worker must not have an hour's point written over from the part
    that worker counted (chaos-002, 2 -> 3 workers, read (30, 30) of (60, 60))."""
    totals: dict[str, list[int]] = {}
    for point in points(influx, "raw", "delivery_ledger"):
        device = totals.setdefault(point["device_id"], [0, 0])
        device[0] += point["received"]
        device[1] += point["written"]
    assert totals == {f"chaos-{d:03d}": [PER_DEVICE, PER_DEVICE] for d in range(DEVICES)}
