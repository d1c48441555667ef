"""The delivery ledger across a restart that lost the saved state: an hour's running totals,
written before the restart, are never overwritten by totals counted only since it."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.spool import Spool
from smartplace.ingest.recovery.checkpoint import CHECKPOINT_FILE
from tests.conftest import RunningIngest
from tests.integration.helpers import points, publish_all, restart_stream

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES, PER_DEVICE, STEP_S = 4, 60, 15
HOUR_NS = 3600 * 10**9


def test_a_lost_state_does_not_overwrite_the_hours_ledger_with_a_partial_count(
    settings: Settings, influx: InfluxClient, tmp_path: Path
) -> None:
    if time.time() % 3600 > 3600 - 60:
        time.sleep(61)  # both runs in one arrival hour
    prefix = settings.mqtt.topic_prefix
    _, messages = restart_stream(prefix, DEVICES, PER_DEVICE, STEP_S)
    half = len(messages) // 2
    configured = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(
                update={"spool_dir": tmp_path / "spool", "spool_max_bytes": 64 << 10}
            )
        }
    )
    # Run 1 in two appends to the spool (8 KiB segments): the first is released at its stop,
    # so the spool no longer holds every reading of the hour when run 2 starts.
    for parts in ([messages[: half - 20], messages[half - 20 : half]], [messages[half:]]):
        ingest = RunningIngest(configured)
        ingest.start()
        try:
            sent = 0
            for part in parts:
                sent += publish_all(configured, part)
                ingest.wait_for_received(sent, timeout_s=60)
                time.sleep(0.3)
        finally:
            ingest.close()
        assert ingest.error is None
        (tmp_path / "spool" / CHECKPOINT_FILE).unlink()

    ledger = {
        p["device_id"]: (p["received"], p["accepted"], p["written"])
        for p in points(influx, "raw", "delivery_ledger")
    }
    assert ledger == {f"chaos-{d:03d}": (PER_DEVICE,) * 3 for d in range(DEVICES)}


def test_a_replay_reaching_past_the_open_hours_does_not_overwrite_an_older_hours_point(
    settings: Settings, influx: InfluxClient, tmp_path: Path
) -> None:
    """The spool held 5-hour-old messages (InfluxDB was away), and the state was lost: that
    hour's point, which counted 10 readings up to the third message, gains only the two
    after it (it used to be counted again from the spool's five: 5, not 12)."""
    influx.ensure_storage()
    hour = time.time_ns() // HOUR_NS * HOUR_NS - 5 * HOUR_NS
    arrival = hour + 600 * 10**9
    ledger = f"received=10i,accepted=10i,written=10i,through_ns={arrival + 2}i"
    influx.write([f"delivery_ledger,device_id=aq-old {ledger} {hour}"], "raw")
    prefix = settings.mqtt.topic_prefix
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir, 1 << 20)
    spool.append(
        [
            RawMessage(
                f"{prefix}/air_quality/aq-old/reading",
                orjson.dumps({"ts": arrival // 10**9 - 60 + i, "no2_ugm3": 20.0 + i}),
                arrival + i,
            )
            for i in range(5)
        ]
    )
    spool.close()
    configured = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"spool_dir": spool_dir})}
    )
    ingest = RunningIngest(configured)
    ingest.start()
    try:
        deadline = time.monotonic() + 30
        while ingest.service.stats.batches_written < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        ingest.close()
    assert ingest.error is None
    [point] = [p for p in points(influx, "raw", "delivery_ledger") if p["device_id"] == "aq-old"]
    assert (point["time"], point["received"], point["written"]) == (hour, 12, 12)
