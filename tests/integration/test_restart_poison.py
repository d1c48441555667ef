"""A poisoned message just after a restart that rebuilt the open windows from InfluxDB: the
roll-back must not lose the rebuilt windows, or the aggregates after it hold partial data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.check.quality import QualityChecker
from smartplace.ingest.recovery.checkpoint import CHECKPOINT_FILE
from smartplace.schemas import reading_topic
from tests.chaos.harness import (
    assert_aggregates_exact,
    deterministic_stream,
)
from tests.conftest import RunningIngest
from tests.integration.helpers import one_shard_start, publish_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES, PER_DEVICE, STEP_S = 4, 240, 15


def test_a_poisoned_message_after_a_rebuild_keeps_the_rebuilt_windows(
    settings: Settings, influx: InfluxClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    span_s = PER_DEVICE * STEP_S
    end_s = one_shard_start(span_s + 60) + span_s
    readings = deterministic_stream(DEVICES, PER_DEVICE, STEP_S, end_s)
    prefix = settings.mqtt.topic_prefix
    messages = [(reading_topic(prefix, "air_quality", r.device_id), r.payload()) for r in readings]
    half = len(messages) // 2
    spool = tmp_path / "spool"
    configured = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(
                update={"spool_dir": spool, "spool_max_bytes": 64 << 10}  # 8 KiB segments
            )
        }
    )
    poison = (
        reading_topic(prefix, "air_quality", "aq-0666"),
        orjson.dumps({"ts": end_s - span_s // 2, "pm25_ugm3": 6.0}),
    )
    # Two appends to the spool, so the first's segment is released at the stop: the spool
    # then holds only the last 80 readings and the message that will break the pipeline.
    _run(configured, [messages[: half - 80], [*messages[half - 80 : half], poison]])
    (spool / CHECKPOINT_FILE).unlink()  # the open windows are rebuilt from InfluxDB

    real_check = QualityChecker.check

    def breaks_on_aq_0666(self: QualityChecker, columns: Any) -> Any:
        report = real_check(self, columns)
        if "aq-0666" in columns.device_ids.tolist():
            raise ZeroDivisionError("division by zero")
        return report

    monkeypatch.setattr(QualityChecker, "check", breaks_on_aq_0666)
    _run(configured, [messages[half:]])  # its replay breaks before the rebuild

    assert_aggregates_exact(influx, readings, leave_out=frozenset({"aq-0666"}))


def _run(settings: Settings, parts: list[list[tuple[str, bytes]]]) -> None:
    ingest = RunningIngest(settings)
    ingest.start()
    try:
        sent = 0
        for part in parts:
            sent += publish_all(settings, part)
            # Not wait_for_received: received counts the start's replay of what the spool held.
            deadline = time.monotonic() + 60
            while True:
                assert ingest.error is None
                writer, stats = ingest.service.writer, ingest.service.stats
                if (
                    writer is not None
                    and stats.spooled >= sent
                    and writer.offsets.written >= writer.spool.next_seq
                ):
                    break
                assert time.monotonic() < deadline, "ingest did not write everything in 60 s"
                time.sleep(0.05)
            time.sleep(0.3)
    finally:
        ingest.close()
    assert ingest.error is None
    stats = ingest.service.stats
    # A batch replayed after the roll-back is not counted again, in batches nor written.
    assert stats.batches_written == stats.batches
