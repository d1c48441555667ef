"""Each worker writes its counters to ingest_stats, for the pipeline-health dashboard."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient

from .helpers import points, publish_all, reading_message

pytestmark = pytest.mark.integration


def test_counters_reach_influxdb_tagged_with_the_worker(
    settings: Settings, influx: InfluxClient
) -> None:
    from tests.conftest import RunningIngest

    quick = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"stats_interval_s": 0.2})}
    )
    ingest = RunningIngest(quick)
    ingest.start()
    try:
        now = int(datetime.now(UTC).timestamp())
        messages = [
            reading_message(settings, "aq-0001", {"ts": now - 10 + i, "pm25_ugm3": 4.0 + i})
            for i in range(3)
        ]
        messages.append(reading_message(settings, "aq-0001", b"not json"))
        ingest.wait_for_received(publish_all(settings, messages))
        time.sleep(0.5)  # at least one more stats interval
    finally:
        ingest.close()
    latest = max(points(influx, "raw", "ingest_stats"), key=lambda p: p["time"])
    assert latest["worker"] == settings.mqtt.client_id
    assert (latest["received"], latest["accepted"], latest["rejected"]) == (4, 3, 1)
    assert latest["raw_points_written"] == 3
    assert latest["backlog"] == 0
    assert latest["rejected_malformed_json"] == 1
    assert (latest["spooled"], latest["redelivered"]) == (4, 0)
    assert latest["oldest_unwritten_age_s"] == 0.0
    assert latest["acknowledging"] is True
