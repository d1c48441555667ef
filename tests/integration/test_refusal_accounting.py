"""What InfluxDB refuses inside a batch that also holds rejects, registry updates and
aggregates is counted exactly: in the writer's counters and in the delivery ledger's hour."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import orjson
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.spool import Spool
from smartplace.ingest.stats import IngestStats
from smartplace.ingest.writer_thread import WriterThread
from smartplace.storage import SITE_DAQI

from .helpers import one_shard_start, points, reading_message

pytestmark = pytest.mark.integration

HOUR_NS = 3600 * 10**9


def _write_through(settings: Settings, messages: list[RawMessage], batches: int) -> IngestStats:
    spool = Spool(Path(tempfile.mkdtemp(prefix="smartplace-test-spool-")), 1 << 20)
    spool.append(messages)
    stats = IngestStats()
    writer = WriterThread(settings, spool, Pipeline(settings), 0, stats, lambda: False)
    writer.start()
    deadline = time.monotonic() + 30
    while writer.offsets.written < batches:
        assert time.monotonic() < deadline, "the writer did not land every batch"
        time.sleep(0.05)
    writer.finishing.set()
    writer.thread.join(30)
    assert writer.error is None
    spool.close()
    return stats


@pytest.mark.parametrize("precision", ["ns", "ms"])  # "s": see the reject test below
def test_a_refused_aggregate_is_not_counted_as_a_reading_lost_nor_an_aggregate_written(
    settings: Settings, influx: InfluxClient, precision: str
) -> None:
    start = one_shard_start(900)
    minute = start - start % 60
    if minute % 3600 > 3600 - 120:
        minute += 180  # the 70 s of readings in one hour: one site index point
    influx.ensure_storage()
    # Someone wrote the 1-minute mean as text in this shard: our aggregate will conflict.
    influx.write([f'air_quality_1m,device_id=legacy no2_ugm3_mean="high" {minute * 10**9}'], "agg")
    configured = settings.model_copy(
        update={
            "influx": settings.influx.model_copy(update={"precision": precision}),
            "ingest": settings.ingest.model_copy(update={"windows_s": [60]}),
        }
    )
    topic, _ = reading_message(settings, "aq-0002", b"")
    registry = f"{settings.mqtt.topic_prefix}/registry/aq-0002"
    now = time.time_ns()
    record = {"device_id": "aq-0002", "kind": "air_quality", "site": "market"}
    messages = [
        RawMessage(registry, orjson.dumps(record), now),
        *(
            RawMessage(topic, orjson.dumps({"ts": minute + 10 * i, "no2_ugm3": 20.0 + i}), now)
            for i in range(8)  # 0..70 s: the first minute is complete and due
        ),
        RawMessage(topic, b"{not json", now),
    ]
    stats = _write_through(configured, messages, 1)

    assert len(points(influx, "raw", "air_quality")) == 8
    # Refused: the first minute's aggregate, at the batch, and the second's, at the stop.
    assert sorted(r["reason"] for r in points(influx, "raw", "ingest_rejects")) == [
        "malformed_json",
        "refused_by_database",
        "refused_by_database",
    ]
    stored_1m = [p for p in points(influx, "agg", "air_quality_1m") if p["device_id"] == "aq-0002"]
    assert stored_1m == []  # the refused one
    [ledger] = [p for p in points(influx, "raw", "delivery_ledger") if p["device_id"] == "aq-0002"]
    assert (ledger["accepted"], ledger["written"], ledger["rejected"]) == (8, 8, 1)
    # Every reading was written; of the aggregates, only the site's index was.
    [site_index] = points(influx, "agg", SITE_DAQI)
    assert site_index["site"] == "market"
    assert (stats.write_refused_lines, stats.raw_points_written) == (2, 8)
    assert stats.agg_points_written == 1


def test_two_rejects_in_one_second_are_both_stored_at_precision_s(
    settings: Settings, influx: InfluxClient
) -> None:
    influx.ensure_storage()
    configured = settings.model_copy(
        update={"influx": settings.influx.model_copy(update={"precision": "s"})}
    )
    topic, _ = reading_message(settings, "aq-0002", b"")
    now = time.time_ns()
    bad = [RawMessage(topic, b"{not json %d" % n, now) for n in range(2)]
    stats = _write_through(configured, bad, 1)
    assert stats.rejected_by_reason["malformed_json"] == 2
    assert len(points(influx, "raw", "ingest_rejects")) == 2


def test_a_refused_reading_is_counted_in_the_hour_it_arrived(
    settings: Settings, influx: InfluxClient
) -> None:
    this_hour = time.time_ns() // HOUR_NS * HOUR_NS
    ts = this_hour // 10**9 - 60  # a minute before the hour: arrives one second before it
    influx.ensure_storage()
    influx.write(
        [f'air_quality,device_id=legacy,kind=air_quality no2_ugm3="high" {(ts - 1) * 10**9}'],
        "raw",
    )
    one_per_batch = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"batch_max_messages": 1})}
    )
    refused_topic, _ = reading_message(settings, "aq-0002", b"")
    other_topic, _ = reading_message(settings, "aq-0003", b"")
    messages = [  # the second batch, of the next hour, is processed before the first lands
        RawMessage(refused_topic, orjson.dumps({"ts": ts, "no2_ugm3": 30.0}), this_hour - 10**9),
        RawMessage(other_topic, orjson.dumps({"ts": ts, "pm25_ugm3": 8.0}), this_hour + 10**9),
    ]
    _write_through(one_per_batch, messages, 2)

    ledger = {
        (p["device_id"], p["time"]): (p["received"], p["written"], p["rejected"])
        for p in points(influx, "raw", "delivery_ledger")
    }
    assert ledger == {
        ("aq-0002", this_hour - HOUR_NS): (1, 0, 1),
        ("aq-0003", this_hour): (1, 1, 0),
    }
