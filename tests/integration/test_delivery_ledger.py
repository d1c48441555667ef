"""The delivery ledger, `smartplace trace` and the health endpoints, against a running ingest."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.ledger import HOUR_NS
from smartplace.trace import trace
from tests.conftest import RunningIngest

from .helpers import points, publish_all, reading_message, run_smartplace

pytestmark = pytest.mark.integration

DEVICE = "aq-trace-01"


def _publish_day(settings: Settings, t0: int) -> int:
    return publish_all(
        settings,
        [
            reading_message(settings, DEVICE, {"ts": t0, "no2_ugm3": 21.5}),
            reading_message(settings, DEVICE, {"ts": t0 + 60, "no2_ugm3": 22.5}),
            # The same reading again, sent by the device (no DUP flag): flagged duplicate.
            reading_message(settings, DEVICE, {"ts": t0 + 60, "no2_ugm3": 22.5}),
            reading_message(settings, DEVICE, {"ts": t0 + 120, "no2_ugm3": -50.0}),
        ],
    )


def test_ledger_counts_each_fate_and_trace_explains_each_reading(
    settings: Settings, running_ingest: RunningIngest, influx: InfluxClient
) -> None:
    t0 = int(datetime.now(UTC).timestamp()) // 60 * 60 - 600
    running_ingest.wait_for_received(_publish_day(settings, t0))

    (row,) = points(influx, "raw", "delivery_ledger")
    assert row["device_id"] == DEVICE
    assert row["time"] % HOUR_NS == 0
    assert {k: row[k] for k in ("received", "accepted", "written", "duplicate", "late")} == {
        "received": 4,
        "accepted": 3,
        "written": 3,
        "duplicate": 1,
        "late": 0,
    }
    assert (row["rejected"], row["rejected_out_of_range"]) == (1, 1)

    since = datetime.fromtimestamp(t0 - 3600, UTC)
    stored = trace(influx, DEVICE, since, datetime.fromtimestamp(t0 + 60, UTC))
    assert [r["no2_ugm3"] for r in stored.readings] == [21.5, 22.5]
    assert stored.verdict(datetime.fromtimestamp(t0 + 60, UTC)).startswith("Stored: a reading at")

    refused = trace(influx, DEVICE, since, datetime.fromtimestamp(t0 + 180, UTC))
    assert [r["reason"] for r in refused.rejects] == ["out_of_range"]
    assert refused.verdict(datetime.fromtimestamp(t0 + 180, UTC)) == (
        "Not stored: ingest rejected it (out_of_range); details below."
    )

    missing = trace(influx, "aq-never-seen", since, datetime.fromtimestamp(t0, UTC))
    assert missing.verdict(datetime.fromtimestamp(t0, UTC)).startswith("Never reached ingest")


def test_trace_command_prints_the_ledger_and_the_verdict(
    settings: Settings, running_ingest: RunningIngest
) -> None:
    t0 = int(datetime.now(UTC).timestamp()) // 60 * 60 - 600
    running_ingest.wait_for_received(_publish_day(settings, t0))
    at = datetime.fromtimestamp(t0 + 120, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    env = {
        "SMARTPLACE_INFLUX__URL": settings.influx.url,
        "SMARTPLACE_INFLUX__DATABASE": settings.influx.database,
        "COLUMNS": "200",
    }
    result = run_smartplace(env, "trace", DEVICE, "--at", at)
    assert result.returncode == 0, result.stderr
    assert "Delivery ledger for aq-trace-01" in result.stdout
    assert "out_of_range 1" in result.stdout
    assert "Not stored: ingest rejected it (out_of_range)" in result.stdout

    bad = run_smartplace(env, "trace", DEVICE, "--at", "teatime")
    assert bad.returncode != 0
    assert "cannot read the time 'teatime'" in bad.stderr + bad.stdout


def test_health_ready_and_metrics_endpoints(
    settings: Settings, running_ingest: RunningIngest
) -> None:
    running_ingest.wait_for_received(_publish_day(settings, int(datetime.now(UTC).timestamp())))
    health = running_ingest.service.health
    assert health is not None
    base = f"http://127.0.0.1:{health.port}"
    assert httpx.get(f"{base}/healthz").json() == {"alive": True}
    assert httpx.get(f"{base}/readyz").json() == {"ready": True, "problems": []}
    metrics = httpx.get(f"{base}/metrics").text
    assert "smartplace_ingest_accepted_total 3.0" in metrics
    assert 'smartplace_ingest_rejected_total{reason="out_of_range"} 1.0' in metrics
    assert "smartplace_ingest_mqtt_connected 1.0" in metrics
    assert httpx.get(f"{base}/nothing").status_code == 404
