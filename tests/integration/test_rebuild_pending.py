"""No commit while windows wait for their rebuild: the state leaves those windows out, and the
replayed records are what tell the rebuild where to start. A checkpoint saved on the way (every
commit interval) used to release them, so a stop before the rebuild lost the backlog's
aggregates for good (20, 14 and 3 of 180 one-minute aggregates in three runs)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

import smartplace.ingest.service as service_module
from smartplace.config import Settings
from smartplace.errors import InfluxUnavailableError
from smartplace.influx import InfluxClient
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.spool import Spool
from smartplace.ingest.recovery.checkpoint import load_checkpoint
from tests.conftest import RunningIngest
from tests.integration.helpers import points

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READINGS, STEP_S = 300, 36


def test_a_stop_before_the_rebuild_keeps_every_backlog_window_for_the_next_start(
    settings: Settings, influx: InfluxClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No state, and a 3-hour backlog in the spool (InfluxDB was away).
    prefix, spool_dir = settings.mqtt.topic_prefix, tmp_path / "spool"
    now_ns = time.time_ns()
    first_ts = now_ns // 10**9 - 3 * 3600
    first_ts -= first_ts % 60
    spool = Spool(spool_dir, 8 << 20)
    spool.append(
        [
            RawMessage(
                f"{prefix}/air_quality/aq-backlog/reading",
                orjson.dumps({"ts": first_ts + STEP_S * i, "no2_ugm3": 20.0 + i % 11}),
                now_ns - 3 * 3600 * 10**9 + STEP_S * i * 10**9,
            )
            for i in range(READINGS)
        ]
    )
    spool.close()
    ingest = settings.ingest.model_copy(
        update={
            "spool_dir": spool_dir,
            "windows_s": [60],
            "batch_max_messages": 10,
            "commit_interval_s": 0.01,
            "write_retry_max_s": 0.2,
        }
    )
    configured = settings.model_copy(update={"ingest": ingest})

    # Run 1 replays the backlog, then finds InfluxDB away at the rebuild and is stopped.
    def influxdb_away(*_args: object, **_kwargs: object) -> None:
        raise InfluxUnavailableError("InfluxDB away at the rebuild")

    monkeypatch.setattr(service_module, "rebuild_windows", influxdb_away)
    first = RunningIngest(configured)
    first.start()
    deadline = time.monotonic() + 30
    while first.service.stats.batches_written < READINGS // 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    first.close()
    checkpoint = load_checkpoint(spool_dir)
    assert checkpoint is None or checkpoint.committed_seq == 0
    monkeypatch.undo()

    second = RunningIngest(configured)
    second.start()
    deadline = time.monotonic() + 30
    expected = {(first_ts + STEP_S * i) // 60 * 60 for i in range(READINGS)}
    while len(_minutes(influx)) < len(expected) - 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    second.close()  # and its last minute, still open, is written at the stop
    assert second.error is None
    assert len(points(influx, "raw", "air_quality")) == READINGS
    assert sorted(expected - _minutes(influx)) == []


def _minutes(influx: InfluxClient) -> set[int]:
    return {p["time"] // 10**9 for p in points(influx, "agg", "air_quality_1m")}
