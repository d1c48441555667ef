"""A gap in a TTS application's uplinks filled from its Storage Integration, exactly once.

The Storage Integration is served here by a local HTTP server replaying the response
format TTS streams (newline-delimited ``{"result": ApplicationUp}`` objects for
``Accept: text/event-stream``): the one stand-in allowed in these tests, since The Things
Stack cannot run on these machines. Everything else is real: the broker, ingest, InfluxDB.
"""

from __future__ import annotations

import base64
import secrets
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pytest

from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.lorawan.backfill import backfill
from smartplace.schemas.reading import timestamp_to_ns
from smartplace.trace import trace

from ..conftest import RunningIngest
from .helpers import points, publish_all

pytestmark = pytest.mark.integration

API_KEY = "NNSXS.STORAGE." + secrets.token_hex(8)


def stored_up(app_id: str, device: str, f_cnt: int, moment: datetime) -> dict[str, Any]:
    frm = struct.pack("<BBBBBH", 0x01, 0x75, 70, 0x03, 0x82, 400 + f_cnt)
    return {
        "end_device_ids": {"device_id": device, "application_ids": {"application_id": app_id}},
        "received_at": moment.isoformat().replace("+00:00", "Z"),
        "uplink_message": {
            "session_key_id": "AXA50tHUGUucuzS/bCGMNw==",
            "f_port": 85,
            "f_cnt": f_cnt,
            "frm_payload": base64.b64encode(frm).decode(),
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -90, "snr": 7.0}],
            "version_ids": {"brand_id": "milesight-iot", "model_id": "em310-udl"},
        },
    }


class StorageStandIn:
    """Serves GET /api/v3/as/applications/{app}/packages/storage/uplink_message as TTS does."""

    def __init__(self, app_id: str, stored: list[dict[str, Any]]) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                outer.requests.append(
                    (
                        url.path,
                        query,
                        self.headers.get("Authorization", ""),
                        self.headers.get("Accept", ""),
                    )
                )
                if url.path != f"/api/v3/as/applications/{app_id}/packages/storage/uplink_message":
                    self.send_error(404)
                    return
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    self.send_error(401)
                    return
                after = timestamp_to_ns(query["after"][0])
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for up in stored:
                    if timestamp_to_ns(up["received_at"]) > after:
                        self.wfile.write(orjson.dumps({"result": up}) + b"\n")

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gap(
    tmp_path: Path,
) -> Iterator[tuple[StorageStandIn, str, str, list[dict[str, Any]], datetime]]:
    tag = secrets.token_hex(3)
    app_id, device = f"gap{tag}", f"bin-gap{tag}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    stored = [stored_up(app_id, device, f, start + timedelta(minutes=2 * f)) for f in range(1, 21)]
    server = StorageStandIn(app_id, stored)
    try:
        yield server, app_id, device, stored, start
    finally:
        server.close()


def test_backfill_fills_the_gap_exactly_once(
    settings: Settings,
    influx: InfluxClient,
    running_ingest: RunningIngest,
    gap: tuple[StorageStandIn, str, str, list[dict[str, Any]], datetime],
    tmp_path: Path,
) -> None:
    server, app_id, device, stored, start = gap
    application = f"{app_id}@council"
    topic = f"v3/{application}/devices/{device}/up"
    # the bridge link was down for frames 8-12: they never came over MQTT
    live = [
        (topic, orjson.dumps(up)) for up in stored if not 8 <= up["uplink_message"]["f_cnt"] <= 12
    ]
    sent = publish_all(settings, live)
    running_ingest.wait_for_received(sent)
    assert len([p for p in points(influx, "raw", "bin") if p["device_id"] == device]) == 15
    # the gap is seen: frame 13 came after 7
    assert running_ingest.service.stats.lorawan_frames == {"missed_frames": 5}

    key_file = tmp_path / "storage-key"
    key_file.write_text(API_KEY + "\n")
    first = backfill(settings, server.url, application, key_file, start)
    running_ingest.wait_for_received(sent + first.published)
    second = backfill(settings, server.url, application, key_file, start)  # run twice: no harm
    running_ingest.wait_for_received(sent + first.published + second.published)

    assert (first.fetched, first.published, first.skipped) == (20, 20, 0)
    bins = [p for p in points(influx, "raw", "bin") if p["device_id"] == device]
    assert sorted(p["distance_mm"] for p in bins) == [400.0 + f for f in range(1, 21)]
    rejects = Counter(
        p["reason"] for p in points(influx, "raw", "ingest_rejects") if p.get("device_id") == device
    )
    assert rejects == {"duplicate_frame": 15 + 20}
    # counted per device in the delivery ledger and ingest_stats, and shown by trace
    ledger = [p for p in points(influx, "raw", "delivery_ledger") if p["device_id"] == device]
    assert (
        sum(p.get("missed_frames", 0) for p in ledger),
        sum(p.get("backfilled_frames", 0) for p in ledger),
    ) == (5, 5)
    assert running_ingest.service.stats.lorawan_frames == {
        "missed_frames": 5,
        "backfilled_frames": 5,
    }
    verdict = trace(influx, device, start).verdict(None)
    assert verdict.endswith(
        "Its LoRaWAN frame counters show 5 uplinks missed, 5 came in late (fill a gap with "
        "'smartplace lorawan backfill')."
    )
    _path, query, authorization, accept = server.requests[0]
    assert (query["after"], query["order"], authorization, accept) == (
        [start.isoformat().replace("+00:00", "Z")],
        ["received_at"],
        f"Bearer {API_KEY}",
        "text/event-stream",
    )
