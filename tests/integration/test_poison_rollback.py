"""A message that makes a stage past decoding raise (quality, windows, ledger) costs only
itself: the writer rolls the pipeline back to its checkpoint, replays, and stores the message
as an internal_error reject; nothing else is lost or counted twice."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.check.quality import QualityChecker
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.spool import Spool
from smartplace.ingest.stats import IngestStats
from smartplace.ingest.writer_thread import WriterThread

from .helpers import points, reading_message

pytestmark = pytest.mark.integration


def test_a_message_that_breaks_the_quality_checks_is_rolled_back_and_rejected_alone(
    settings: Settings, influx: InfluxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_check = QualityChecker.check

    def breaks_on_aq_0666(self: QualityChecker, columns: Any) -> Any:
        report = real_check(self, columns)  # state changed first: a half-updated pipeline
        if "aq-0666" in columns.device_ids.tolist():
            raise ZeroDivisionError("division by zero")
        return report

    monkeypatch.setattr(QualityChecker, "check", breaks_on_aq_0666)
    influx.ensure_storage()
    spool = Spool(Path(tempfile.mkdtemp(prefix="smartplace-test-spool-")), 1 << 20)
    now = int(time.time())
    good, _ = reading_message(settings, "aq-0001", b"")
    poison, _ = reading_message(settings, "aq-0666", b"")
    received = time.time_ns()
    spool.append(
        [
            RawMessage(good, orjson.dumps({"ts": now - 30, "pm25_ugm3": 5.0}), received),
            RawMessage(poison, orjson.dumps({"ts": now - 20, "pm25_ugm3": 6.0}), received + 1),
            RawMessage(good, orjson.dumps({"ts": now - 10, "pm25_ugm3": 7.0}), received + 2),
        ]
    )  # one batch: it raises whole, then a record at a time
    writer = WriterThread(settings, spool, Pipeline(settings), 0, IngestStats(), lambda: False)
    writer.start()
    deadline = time.monotonic() + 30
    while writer.offsets.written < 3:
        assert writer.error is None
        assert time.monotonic() < deadline, "the writer did not get past the poison"
        time.sleep(0.05)
    writer.finishing.set()
    writer.thread.join(30)
    assert writer.error is None
    assert list(writer.poisoned) == [1]

    landed = sorted((p["device_id"], p["pm25_ugm3"]) for p in points(influx, "raw", "air_quality"))
    assert landed == [("aq-0001", 5.0), ("aq-0001", 7.0)]
    [reject] = points(influx, "raw", "ingest_rejects")
    assert (reject["reason"], reject["device_id"]) == ("internal_error", "aq-0666")
    assert reject["detail"].startswith(
        "ZeroDivisionError at tests.integration.test_poison_rollback:breaks_on_aq_0666:"
    )
    ledger = {p["device_id"]: p for p in points(influx, "raw", "delivery_ledger")}
    assert (ledger["aq-0001"]["accepted"], ledger["aq-0001"]["written"]) == (2, 2)
    assert ledger["aq-0666"]["rejected_internal_error"] == 1
    assert writer.stats.rejected_by_reason["internal_error"] == 1
    assert writer.stats.accepted == 2  # the replay counted nothing twice
