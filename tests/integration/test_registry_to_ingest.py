"""Ingest learns devices from retained registry messages: no restart, no shared file."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from smartplace.config import Settings
from smartplace.devices.model import DeviceRecord
from smartplace.devices.provisioning import announce
from smartplace.influx import InfluxClient

from .helpers import points, publish_all, reading_message

pytestmark = pytest.mark.integration


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_device_added_while_ingest_runs_is_accepted_with_its_site_and_a_retired_one_refused(
    registered_settings: Settings, influx: InfluxClient, running_ingest: Any
) -> None:
    settings = registered_settings
    stats = running_ingest.service.stats

    sent = publish_all(
        settings, [reading_message(settings, "aq-0500", {"ts": now_iso(), "pm25_ugm3": 3.0})]
    )
    running_ingest.wait_for_received(sent)
    assert stats.rejected_by_reason["unknown_device"] == 1

    record = DeviceRecord(
        device_id="aq-0500",
        kind="air_quality",
        site="mersey-square",
        latitude=53.4093,
        longitude=-2.158,
    )
    announce(settings, [record])
    wait_for(lambda: running_ingest.service.pipeline.directory.get("aq-0500") is not None)
    sent += publish_all(
        settings, [reading_message(settings, "aq-0500", {"ts": now_iso(), "pm25_ugm3": 4.0})]
    )
    running_ingest.wait_for_received(sent + 1)  # + the registry message

    [point] = points(influx, "raw", "air_quality")
    assert (point["device_id"], point["site"], point["pm25_ugm3"]) == (
        "aq-0500",
        "mersey-square",
        4.0,
    )
    info_points = points(influx, "raw", "device_info")
    [info] = info_points
    assert (info["site"], info["latitude"], info["longitude"], info["status"]) == (
        "mersey-square",
        53.4093,
        -2.158,
        "active",
    )

    announce(settings, [record.model_copy(update={"status": "retired"})])
    wait_for(lambda: running_ingest.service.pipeline.directory.get("aq-0500").status == "retired")  # type: ignore[union-attr]
    sent += publish_all(
        settings, [reading_message(settings, "aq-0500", {"ts": now_iso(), "pm25_ugm3": 5.0})]
    )
    running_ingest.wait_for_received(sent + 2)
    assert stats.rejected_by_reason["retired_device"] == 1
    assert len(points(influx, "raw", "air_quality")) == 1
    running_ingest.close()  # a graceful stop writes the open window, tagged with the site
    [aggregate] = points(influx, "agg", "air_quality_1m")
    assert (aggregate["site"], aggregate["pm25_ugm3_mean"]) == ("mersey-square", 4.0)


def test_a_device_publishing_as_another_kind_is_refused(
    registered_settings: Settings, running_ingest: Any
) -> None:
    settings = registered_settings
    announce(settings, [DeviceRecord(device_id="bin-0500", kind="bin")])
    wait_for(lambda: running_ingest.service.pipeline.directory.get("bin-0500") is not None)
    sent = publish_all(settings, [reading_message(settings, "bin-0500", {"pm25_ugm3": 1.0})])
    running_ingest.wait_for_received(sent + 1)
    assert running_ingest.service.stats.rejected_by_reason == {"topic_device_mismatch": 1}
