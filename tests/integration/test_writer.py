"""A line InfluxDB refuses costs only itself: the rest of the batch lands, and the refusal is a reject."""

from __future__ import annotations

from typing import Any

import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient

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
