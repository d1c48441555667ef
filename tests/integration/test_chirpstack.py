"""ChirpStack v4 uplink events for both Milesight profiles, through the real broker into the
real InfluxDB: the same profiles as The Things Stack's, the device found by its DevEUI
through the registry or by its ChirpStack name."""

from __future__ import annotations

import base64
import secrets
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from smartplace.config import Settings
from smartplace.devices.model import DeviceRecord
from smartplace.devices.provisioning import announce
from smartplace.influx import InfluxClient

from ..conftest import RunningIngest
from .helpers import Message, points, publish_all

pytestmark = pytest.mark.integration


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def event(
    app: str,
    eui: str,
    name: str,
    profile: str,
    f_cnt: int,
    moment: datetime,
    frm: bytes,
    obj: dict[str, Any] | None = None,
) -> Message:
    body: dict[str, Any] = {
        "deduplicationId": secrets.token_hex(16),
        "time": iso(moment),
        "deviceInfo": {
            "tenantId": "t",
            "applicationId": app,
            "applicationName": "town",
            "deviceProfileName": profile,
            "deviceName": name,
            "devEui": eui,
        },
        "devAddr": "01fa2b3c",
        "fCnt": f_cnt,
        "fPort": 85,
        "data": base64.b64encode(frm).decode(),
        "rxInfo": [{"gatewayId": "0016c001ff10a235", "rssi": -99, "snr": 6.0}],
    }
    if obj is not None:
        body["object"] = obj
    return f"application/{app}/device/{eui}/event/up", orjson.dumps(body)


def test_chirpstack_events_of_both_milesight_profiles_land(
    registered_settings: Settings, influx: InfluxClient, running_ingest: RunningIngest
) -> None:
    tag = secrets.token_hex(3)
    app = f"app-{tag}"
    bin_eui, counter_eui = f"24e1247{tag}00a", f"24e1247{tag}00b"
    bin_id, counter_id = f"bin-cs{tag}", f"ff-cs{tag}"
    # the bin is registered by its DevEUI (ChirpStack calls it something else); the counter by name
    records = [
        DeviceRecord(device_id=bin_id, kind="bin", site="test-site", metadata={"dev_eui": bin_eui}),
        DeviceRecord(device_id=counter_id, kind="footfall", site="test-site"),
    ]
    announce(registered_settings, records)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    messages: list[Message] = []
    for f in range(1, 6):
        moment = start + timedelta(minutes=5 * f)
        distance = 1100 - 100 * f
        frm = struct.pack("<BBBBBHBBB", 0x01, 0x75, 90, 0x03, 0x82, distance, 0x04, 0x00, 0)
        obj = {"battery": 90, "distance": distance, "position": "normal"}
        messages.append(
            event(app, bin_eui, "Library bin", "milesight-em310-udl", f, moment, frm, obj)
        )
        totals = struct.pack("<BBIBBI", 0x03, 0xD2, 1000 + 12 * f, 0x04, 0xD2, 500 + 5 * f)
        messages.append(event(app, counter_eui, counter_id, "vs133", f, moment, totals))
    running_ingest.wait_for_received(publish_all(registered_settings, messages) + len(records))

    bins = sorted(
        (p["time"], p["distance_mm"], p["fill_pct"])
        for p in points(influx, "raw", "bin")
        if p["device_id"] == bin_id
    )
    assert [(d, fill) for _t, d, fill in bins] == [
        (1100.0 - 100 * f, round(100 * f / 850 * 100, 2)) for f in range(1, 6)
    ]
    counts = sorted(
        (p["time"], p["count_in"], p["count_out"], p["interval_s"])
        for p in points(influx, "raw", "footfall")
        if p["device_id"] == counter_id
    )
    assert [c[1:] for c in counts] == [(12, 5, 300)] * 4  # the first frame is the baseline
    statuses = [
        p for p in points(influx, "raw", "device_status") if p["device_id"] in (bin_id, counter_id)
    ]
    assert len(statuses) == 10
    assert not [
        p
        for p in points(influx, "raw", "ingest_rejects")
        if tag in p.get("device_id", "") or tag in p.get("topic", "")
    ]
