"""The spool's segments removed by hand, the state file kept: what arrives next is written, not
held behind an offset the new spool will take as long to reach."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.receive.spool import SEGMENT_SUFFIX
from smartplace.ingest.recovery.checkpoint import CHECKPOINT_FILE
from smartplace.schemas import reading_topic
from tests.conftest import RunningIngest
from tests.integration.helpers import points, publish_all

pytestmark = pytest.mark.integration


def test_a_spool_emptied_by_hand_under_a_kept_checkpoint_loses_nothing_after_it(
    settings: Settings, influx: InfluxClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    configured = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"spool_dir": spool})}
    )
    now = int(time.time())
    prefix = settings.mqtt.topic_prefix
    for run, device in enumerate(("aq-0001", "aq-0002")):
        ingest = RunningIngest(configured)
        ingest.start()
        try:
            publish_all(
                configured,
                [
                    (
                        reading_topic(prefix, "air_quality", device),
                        orjson.dumps({"ts": now - 100 + i, "pm25_ugm3": 5.0 + i}),
                    )
                    for i in range(10)
                ],
            )
            ingest.wait_for_received(10, timeout_s=30)
        finally:
            ingest.close()
        assert ingest.error is None
        if run == 0:
            assert (spool / CHECKPOINT_FILE).exists()
            for segment in spool.glob(f"*{SEGMENT_SUFFIX}"):
                segment.unlink()
            caplog.set_level(logging.ERROR, "smartplace.ingest.service")

    stored = sorted((p["device_id"], p["pm25_ugm3"]) for p in points(influx, "raw", "air_quality"))
    assert stored == [(d, 5.0 + i) for d in ("aq-0001", "aq-0002") for i in range(10)]
    assert any("past the spool's end 0" in r.getMessage() for r in caplog.records)
