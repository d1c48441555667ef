"""A gap in a TTS application's uplinks, made by cutting the bridge's link, filled from its
Storage Integration exactly once.

The project's broker is bridged, as 'smartplace up' bridges it (the command's file in its
bridges directory), to a mosquitto standing in for TTS's MQTT server (tts_standin.py),
through a TCP relay the test cuts: uplinks TTS publishes while the link is down reach no
subscriber and are gone, as on TTS, which keeps nothing for an MQTT client.

The Storage Integration is served here by a local HTTP server replaying the response
format TTS streams (newline-delimited ``{"result": ApplicationUp}`` objects for
``Accept: text/event-stream``): the one stand-in allowed in these tests, since The Things
Stack cannot run on these machines. Everything else is real: both brokers, ingest, InfluxDB.
"""

from __future__ import annotations

import base64
import secrets
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson
import pytest

from smartplace.config import InfluxSettings, IngestSettings, Settings
from smartplace.influx import InfluxClient
from smartplace.lorawan.backfill import backfill
from smartplace.lorawan.bridge import TtsBridge, render_tts_bridge, write_bridge_file
from smartplace.schemas.reading import timestamp_to_ns
from smartplace.stack import InfluxdServer, MosquittoServer, free_port
from smartplace.stack.mosquitto import provisioned_mqtt
from smartplace.trace import trace

from ..conftest import RunningIngest
from .helpers import points
from .tts_standin import APPLICATION, LinkRelay, StandInServer, tts_publisher, wait_for

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


@dataclass
class CutLink:
    settings: Settings
    standin: StandInServer
    relay: LinkRelay
    api_key: str


@pytest.fixture
def cut_link(
    mosquitto: MosquittoServer, influxd: InfluxdServer, tmp_path: Path
) -> Iterator[CutLink]:
    """The project's broker bridged to the TTS stand-in through a relay the test can cut."""
    api_key = "NNSXS." + secrets.token_hex(20)
    standin = StandInServer(mosquitto.binary, tmp_path, api_key)
    relay = LinkRelay(standin.port)
    key_file = tmp_path / "api-key"
    key_file.write_text(api_key + "\n")
    bridges = tmp_path / "bridges"
    bridges.mkdir(mode=0o700)
    write_bridge_file(
        render_tts_bridge(TtsBridge(f"127.0.0.1:{relay.port}", APPLICATION, key_file, standin.ca)),
        bridges / "tts-town-bins.conf",
    )
    broker = MosquittoServer(
        mosquitto.binary,
        tmp_path / "project",
        free_port(),
        ("gap-admin", secrets.token_urlsafe(12)),
        mosquitto.plugin,
        bridges_dir=bridges,
    )
    broker.start()
    mqtt = provisioned_mqtt(broker, "gap")
    settings = Settings(
        mqtt=mqtt,
        influx=InfluxSettings(
            url=influxd.url, database=f"test_{mqtt.topic_prefix.removeprefix('gap-')}"
        ),
        ingest=IngestSettings(batch_max_wait_s=0.05, require_registered_devices=False, http_port=0),
        registry_file=tmp_path / "registry.db",
    )
    try:
        yield CutLink(settings, standin, relay, api_key)
    finally:
        broker.stop()
        relay.close()
        standin.stop()


def bridge_subscriptions(standin: StandInServer) -> int:
    return standin.log_text().count("Received SUBSCRIBE from smartplace-bridge-town-bins")


@pytest.mark.slow
def test_a_cut_bridge_link_is_counted_and_backfill_fills_it_exactly_once(
    cut_link: CutLink, tmp_path: Path
) -> None:
    settings, standin = cut_link.settings, cut_link.standin
    tag = secrets.token_hex(3)
    device = f"bin-gap{tag}"
    topic = f"v3/{APPLICATION}/devices/{device}/up"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    stored = [
        stored_up("town-bins", device, f, start + timedelta(minutes=2 * f)) for f in range(1, 21)
    ]
    server = StorageStandIn("town-bins", stored)
    wait_for(lambda: bridge_subscriptions(standin) == 1, "the bridge subscribed at the stand-in")
    tts = tts_publisher(standin, cut_link.api_key)
    ingest = RunningIngest(settings)
    ingest.start()
    try:

        def publish(frames: range, qos: int) -> None:
            for up in stored[frames.start - 1 : frames.stop - 1]:
                tts.publish(topic, orjson.dumps(up), qos=qos).wait_for_publish(10)

        publish(range(1, 8), qos=0)  # TTS delivers at QoS 0
        ingest.wait_for_received(7)
        cut_link.relay.cut()
        # Frames 8-12 while the link is down. QoS 1 from this publisher only so that the
        # stand-in has routed each one (to no subscriber: the bridge's clean session went
        # with its connection) before the link comes back; they are lost, as on TTS.
        publish(range(8, 13), qos=1)
        cut_link.relay.restore()
        wait_for(
            lambda: bridge_subscriptions(standin) == 2,
            "the bridge reconnected after the link came back",
            timeout_s=120,
        )
        publish(range(13, 21), qos=0)
        ingest.wait_for_received(15)
        # only 15 of the 20 ever crossed the link
        assert standin.log_text().count("Sending PUBLISH to smartplace-bridge-town-bins") == 15
        with InfluxClient(settings.influx) as influx:
            bins = [p for p in points(influx, "raw", "bin") if p["device_id"] == device]
            assert sorted(p["distance_mm"] for p in bins) == [
                400.0 + f for f in range(1, 21) if not 8 <= f <= 12
            ]
            # the gap is seen: frame 13 came after 7
            assert ingest.service.stats.lorawan_frames == {"missed_frames": 5}

            key_file = tmp_path / "storage-key"
            key_file.write_text(API_KEY + "\n")
            application = APPLICATION
            first = backfill(settings, server.url, application, key_file, start)
            ingest.wait_for_received(15 + first.published)
            second = backfill(settings, server.url, application, key_file, start)  # no harm
            ingest.wait_for_received(15 + first.published + second.published)

            assert (first.fetched, first.published, first.skipped) == (20, 20, 0)
            bins = [p for p in points(influx, "raw", "bin") if p["device_id"] == device]
            assert sorted(p["distance_mm"] for p in bins) == [400.0 + f for f in range(1, 21)]
            rejects = Counter(
                p["reason"]
                for p in points(influx, "raw", "ingest_rejects")
                if p.get("device_id") == device
            )
            assert rejects == {"duplicate_frame": 15 + 20}
            # counted per device in the delivery ledger and ingest_stats, and shown by trace
            ledger = [
                p for p in points(influx, "raw", "delivery_ledger") if p["device_id"] == device
            ]
            assert (
                sum(p.get("missed_frames", 0) for p in ledger),
                sum(p.get("backfilled_frames", 0) for p in ledger),
            ) == (5, 5)
            assert ingest.service.stats.lorawan_frames == {
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
    finally:
        ingest.close()
        tts.loop_stop()
        tts.disconnect()
        server.close()
