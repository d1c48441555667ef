"""TTS webhook deliveries with ingest down, then up: every one answered 2xx has landed.

A real HTTP server (uvicorn) runs the receiver against the real broker; ingest's
persistent session exists but ingest is stopped while the deliveries come. A wrong
secret is refused and nothing of it is published.
"""

from __future__ import annotations

import base64
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import uvicorn

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.lorawan.webhook import SECRET_HEADER, webhook_app
from smartplace.publisher import gateway_publisher
from smartplace.stack import free_port

from ..conftest import RunningIngest
from .helpers import points

pytestmark = pytest.mark.integration

SECRET = secrets.token_urlsafe(24)


def delivery(app_id: str, device: str, f_cnt: int, moment: datetime) -> bytes:
    frm = struct.pack("<BBBBBH", 0x01, 0x75, 66, 0x03, 0x82, 500 + f_cnt)
    return orjson.dumps(
        {
            "end_device_ids": {"device_id": device, "application_ids": {"application_id": app_id}},
            "received_at": moment.isoformat().replace("+00:00", "Z"),
            "uplink_message": {
                "session_key_id": "AXA50tHUGUucuzS/bCGMNw==",
                "f_cnt": f_cnt,
                "frm_payload": base64.b64encode(frm).decode(),
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -95, "snr": 8.0}],
                "version_ids": {"brand_id": "milesight-iot", "model_id": "em310-udl"},
            },
        }
    )


@pytest.fixture
def receiver(settings: Settings) -> Iterator[str]:
    with gateway_publisher(settings.mqtt, "webhook") as publisher:
        app = webhook_app(publisher, SECRET, "council", settings.ingest.max_payload_bytes)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the webhook receiver did not start"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}/tts/uplink"
        finally:
            server.should_exit = True
            thread.join(10)


def test_webhook_deliveries_while_ingest_is_down_all_land_when_it_is_up(
    settings: Settings, influx: InfluxClient, receiver: str
) -> None:
    ingest = RunningIngest(settings)
    ingest.start()
    ingest.close()  # ingest's persistent session exists; ingest is away
    tag = secrets.token_hex(3)
    app_id, device = f"hook{tag}", f"bin-hook{tag}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with httpx.Client() as http:
        answers = [
            http.post(
                receiver,
                content=delivery(app_id, device, f, start + timedelta(minutes=f)),
                headers={SECRET_HEADER: SECRET},
            ).status_code
            for f in range(1, 51)
        ]
        forged = http.post(
            receiver,
            content=delivery(app_id, device, 99, start),
            headers={SECRET_HEADER: SECRET[:-1] + "x"},
        )
        unsigned = http.post(receiver, content=delivery(app_id, device, 98, start))
        not_uplink = http.post(
            receiver, content=b'{"join_accept": {}}', headers={SECRET_HEADER: SECRET}
        )
    assert answers == [204] * 50
    assert (forged.status_code, unsigned.status_code, not_uplink.status_code) == (401, 401, 400)

    ingest = RunningIngest(settings)
    ingest.start()
    try:
        ingest.wait_for_received(50)
    finally:
        ingest.close()
    bins = [p for p in points(influx, "raw", "bin") if p["device_id"] == device]
    assert sorted(p["distance_mm"] for p in bins) == [500.0 + f for f in range(1, 51)]
