"""A registered device that sends nothing still has a device_health series, and fires its own alert.

Real broker, real ingest, real influxd: two devices are registered, one
reports, one stays silent. The worker is made to have started two hours ago
(its ``started_ns``), so the silent one has been silent for over the rule's
hour; the provisioned silent-device rule, replayed as Grafana evaluates it
(smartplace/dashboards/replay.py), fires for that device alone.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from smartplace.config import Settings
from smartplace.dashboards.provisioning import RULES_INTERVAL, rendered_files
from smartplace.dashboards.replay import ReplayRule, RuleReplay, series_results
from smartplace.devices.directory import DeviceDirectory
from smartplace.devices.model import DeviceRecord
from smartplace.devices.provisioning import announce
from smartplace.influx import InfluxClient
from tests.conftest import RunningIngest

from .helpers import points, publish_all, reading_message

pytestmark = pytest.mark.integration

S = 1_000_000_000
SILENT, TALKS = "aq-0601", "aq-0602"


def wait_for(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def silent_rule() -> ReplayRule:
    alerting = yaml.safe_load(rendered_files()["provisioning/alerting/smartplace.yaml"])
    (rule,) = [r for r in alerting["groups"][0]["rules"] if r["uid"] == "smartplace-device-silent"]
    return ReplayRule.from_provisioned(rule, RULES_INTERVAL)


def test_a_silent_registered_device_has_a_series_and_fires_the_silent_device_rule(
    registered_settings: Settings, influx: InfluxClient
) -> None:
    ingest_settings = registered_settings.ingest.model_copy(
        update={"device_health_interval_s": 0.2}
    )
    settings = registered_settings.model_copy(update={"ingest": ingest_settings})
    ingest = RunningIngest(settings)
    ingest.service.device_health.started_ns = time.time_ns() - 2 * 3600 * S
    ingest.start()
    try:
        announce(
            settings,
            [
                DeviceRecord(device_id=d, kind="air_quality", site="merseyway")
                for d in (SILENT, TALKS)
            ],
        )
        directory: DeviceDirectory = ingest.service.pipeline.directory
        wait_for(lambda: directory.get(SILENT) is not None and directory.get(TALKS) is not None)
        publish_all(settings, [reading_message(settings, TALKS, {"pm25_ugm3": 4.0})])

        def heard() -> dict[str, Any]:
            latest: dict[str, Any] = {}
            for point in points(influx, "raw", "device_health"):
                latest[point["device_id"]] = point
            return latest

        wait_for(lambda: heard().get(TALKS, {}).get("heard") is True)
    finally:
        ingest.close()
    latest = heard()
    assert latest[SILENT]["heard"] is False
    assert latest[SILENT]["silent_s"] > 7200
    assert (latest[SILENT]["kind"], latest[SILENT]["site"], latest[SILENT]["status"]) == (
        "air_quality",
        "merseyway",
        "active",
    )
    assert latest[TALKS]["silent_s"] < 60

    rule = silent_rule()
    replay = RuleReplay(rule)
    at_s = time.time_ns() // S + 1
    (answer,) = influx.query(rule.statement(at_s))
    replay.step(at_s, series_results(rule, answer))
    assert replay.firing() == {
        (("device_id", SILENT), ("kind", "air_quality"), ("site", "merseyway"))
    }


def test_a_restart_carries_on_a_silence_instead_of_starting_it_again(
    settings: Settings, influx: InfluxClient
) -> None:
    from smartplace.ingest.device_health import DeviceHealth

    influx.ensure_storage()
    policy = settings.influx.raw_retention_policy
    devices = {
        d: DeviceRecord(device_id=d, kind="air_quality", site="merseyway") for d in (SILENT, TALKS)
    }
    before = DeviceHealth(settings.mqtt.topic_prefix, 0.0)
    before.started_ns = time.time_ns() - (3 * 3600 + 600) * S  # the last run's start
    written_at = time.time_ns() - 600 * S
    influx.write(before.lines({SILENT: devices[SILENT]}, written_at), policy)  # 3 h silent by then

    after = DeviceHealth(settings.mqtt.topic_prefix, 0.0)  # this start, ten minutes later
    after._next_write = 0.0
    after.write_if_due(influx, devices, policy)
    silent = {row["device_id"]: row for row in points(influx, policy, "device_health")}
    newest = max(
        (r for r in points(influx, policy, "device_health") if r["device_id"] == SILENT),
        key=lambda r: r["time"],
    )
    # Silent since three hours before the point written ten minutes ago: over 3 h 10 min now.
    assert newest["silent_s"] == pytest.approx((newest["time"] - before.started_ns) / S, abs=1)
    assert newest["silent_s"] > 3 * 3600 + 590
    assert newest["heard"] is False
    assert newest["registry_status"] == "active"
    # A device with no earlier point is silent since this start, as before.
    assert silent[TALKS]["silent_s"] < 60
