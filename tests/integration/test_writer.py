"""A line InfluxDB refuses costs only itself: the rest of the batch lands, and the refusal is a reject."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.spool import Spool
from smartplace.ingest.stats import IngestStats
from smartplace.ingest.writer_thread import WriterThread

from .helpers import one_shard_start, points, publish_all, reading_message

pytestmark = pytest.mark.integration


def test_a_field_type_conflict_refuses_only_the_conflicting_points(
    settings: Settings, influx: InfluxClient, running_ingest: Any
) -> None:
    start = one_shard_start(300)
    # Someone wrote no2_ugm3 as text into this shard before: our float no2_ugm3 will conflict.
    influx.write(
        [f'air_quality,device_id=legacy,kind=air_quality no2_ugm3="high" {start * 10**9}'],
        "raw",
    )
    messages = [
        reading_message(settings, "aq-0001", {"ts": start + 240 + i, "pm25_ugm3": 5.0 + i})
        for i in range(5)
    ]
    messages.insert(
        2,
        reading_message(
            settings, "aq-0002", {"ts": start + 270, "pm25_ugm3": 9.0, "no2_ugm3": 30.0}
        ),
    )
    running_ingest.wait_for_received(publish_all(settings, messages))

    landed = sorted(
        (p["device_id"], p["pm25_ugm3"])
        for p in points(influx, "raw", "air_quality")
        if p["device_id"] != "legacy"
    )
    assert landed == [("aq-0001", 5.0 + i) for i in range(5)]
    [reject] = points(influx, "raw", "ingest_rejects")
    assert reject["reason"] == "refused_by_database"
    assert "no2_ugm3=30.0" in reject["payload"]
    assert "conflict" in reject["detail"]
    stats = running_ingest.service.stats
    assert stats.rejected_by_reason["refused_by_database"] == 1
    assert stats.batches_written == stats.batches  # acknowledged, not retried for ever


def test_a_refusal_settled_after_the_next_batch_was_processed_still_corrects_the_ledger(
    settings: Settings, influx: InfluxClient
) -> None:
    # The writer processes batch 2 while batch 1's write is in flight; batch 1's refusal
    # corrects the ledger after batch 2's running totals were made, and must not be lost.
    start = one_shard_start(300)
    influx.ensure_storage()
    influx.write(
        [f'air_quality,device_id=legacy,kind=air_quality no2_ugm3="high" {start * 10**9}'],
        "raw",
    )
    one_per_batch = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"batch_max_messages": 1})}
    )
    spool = Spool(Path(tempfile.mkdtemp(prefix="smartplace-test-spool-")), 1 << 20)
    topic, _ = reading_message(settings, "aq-0002", b"")
    received = time.time_ns()
    spool.append(
        [
            RawMessage(topic, orjson.dumps({"ts": start + 270, "no2_ugm3": 30.0}), received),
            RawMessage(topic, orjson.dumps({"ts": start + 280, "pm25_ugm3": 8.0}), received),
        ]
    )  # both waiting before the writer starts: the second batch overtakes the first's write
    writer = WriterThread(
        one_per_batch, spool, Pipeline(one_per_batch), 0, IngestStats(), lambda: False
    )
    writer.start()
    deadline = time.monotonic() + 30
    while writer.offsets.written < 2:
        assert time.monotonic() < deadline, "the writer did not land both batches"
        time.sleep(0.05)
    writer.finishing.set()
    writer.thread.join(30)
    assert writer.error is None

    [ledger] = [p for p in points(influx, "raw", "delivery_ledger") if p["device_id"] == "aq-0002"]
    assert (ledger["accepted"], ledger["written"], ledger["rejected_refused_by_database"]) == (
        2,
        1,
        1,
    )
