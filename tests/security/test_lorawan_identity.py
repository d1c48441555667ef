"""A LoRaWAN uplink on one device's topic that names another device in its body.

Whoever can publish on one device's uplink topic (a bridged application, a
webhook, a device's stolen credentials) must not be able to touch another
device's LoRaWAN state. Before the state was keyed on the topic's device, 30
forged frames naming a bin took its duplicate-frame memory (30 of 30 genuine
frames then refused) and a forged counter frame from the future took a
counter's baseline (10 of 10 genuine counts refused). Now every forged frame
is refused as topic_device_mismatch and every genuine frame lands: counted in
InfluxDB, exactly.
"""

from __future__ import annotations

import base64
import secrets
import struct
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient

from ..conftest import RunningIngest
from ..integration.helpers import Message, points, publish_all

pytestmark = [pytest.mark.integration, pytest.mark.security]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def uplink(body_device: str, f_cnt: int, moment: datetime, model_id: str, frm: bytes) -> bytes:
    return orjson.dumps(
        {
            "end_device_ids": {"device_id": body_device},
            "received_at": iso(moment),
            "uplink_message": {
                "session_key_id": "s1",
                "f_cnt": f_cnt,
                "frm_payload": base64.b64encode(frm).decode(),
                "version_ids": {"brand_id": "milesight-iot", "model_id": model_id},
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -104, "snr": 2.5}],
            },
        }
    )


def em310(distance_mm: int) -> bytes:
    return struct.pack("<BBBBBH", 0x01, 0x75, 90, 0x03, 0x82, distance_mm)


def vs133(total_in: int, total_out: int) -> bytes:
    return struct.pack("<BBIBBI", 0x03, 0xD2, total_in, 0x04, 0xD2, total_out)


def test_an_uplink_naming_another_device_is_refused_and_leaves_that_devices_frames_alone(
    settings: Settings, influx: InfluxClient, running_ingest: RunningIngest
) -> None:
    tag = secrets.token_hex(3)  # v3/ topics are not under the test's prefix: own devices
    attacker, bin_victim, counter_victim = f"bin-atk{tag}", f"bin-vic{tag}", f"ff-vic{tag}"
    app = f"v3/town{tag}@ttn/devices"
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(minutes=50)

    forged: list[Message] = [
        # the bin's session and frame counters 1..30, on the attacker's own topic
        (f"{app}/{attacker}/up", uplink(bin_victim, f, start, "em310-udl", em310(500)))
        for f in range(1, 31)
    ]
    # a counter frame from the future: had it become the baseline, every genuine frame
    # would be older than it, refused as out of order
    forged.append(
        (
            f"{app}/{attacker}/up",
            uplink(counter_victim, 999, now + timedelta(minutes=4), "vs133", vs133(10**6, 10**6)),
        )
    )
    genuine: list[Message] = [
        (
            f"{app}/{bin_victim}/up",
            uplink(bin_victim, f, start + timedelta(seconds=60 * f), "em310-udl", em310(300 + f)),
        )
        for f in range(1, 31)
    ]
    # 11 totals 60 s apart: a baseline and 10 counts of 3 in, 1 out each
    genuine += [
        (
            f"{app}/{counter_victim}/up",
            uplink(
                counter_victim,
                f,
                start + timedelta(seconds=60 * f),
                "vs133",
                vs133(100 + 3 * f, 50 + f),
            ),
        )
        for f in range(1, 12)
    ]
    sent = publish_all(settings, forged + genuine)
    running_ingest.wait_for_received(sent)

    bins = [p for p in points(influx, "raw", "bin") if p["device_id"] == bin_victim]
    assert sorted(p["distance_mm"] for p in bins) == [300 + f for f in range(1, 31)]
    counts = [p for p in points(influx, "raw", "footfall") if p["device_id"] == counter_victim]
    assert [(p["count_in"], p["count_out"], p["interval_s"]) for p in counts] == [(3, 1, 60)] * 10
    assert not [p for p in points(influx, "raw", "bin") if p["device_id"] == attacker]

    rejects: list[dict[str, Any]] = [
        p for p in points(influx, "raw", "ingest_rejects") if tag in p.get("device_id", "")
    ]
    assert Counter((p["reason"], p["device_id"]) for p in rejects) == {
        ("topic_device_mismatch", attacker): 31
    }
