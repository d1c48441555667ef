"""Health and metrics over HTTP, for an orchestrator's probes and for Prometheus.

- ``/healthz``: 200 while the worker's threads are alive (restart it when not);
- ``/readyz``: 200 when it is connected to the broker, InfluxDB takes writes,
  the spool has room and the broker keeps ingest's session as long as configured;
  503 with the reasons otherwise;
- ``/metrics``: the worker's counters in Prometheus' text format.

A small stdlib server on its own thread: ingest's work must not wait on a scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from smartplace.config import IngestSettings
from smartplace.ingest.stats import IngestStats

if TYPE_CHECKING:
    from smartplace.ingest.service import IngestService

log = logging.getLogger(__name__)

_COUNTERS = {
    "received": "Messages taken from the spool and processed",
    "accepted": "Readings that passed validation",
    "late_beyond_grace": "Readings too late for their window's aggregate (stored raw)",
    "raw_points_written": "Raw points InfluxDB accepted",
    "agg_points_written": "Aggregate points InfluxDB accepted",
    "write_retries": "Write attempts that failed and were retried",
    "write_refused_lines": "Lines InfluxDB refused for good (stored as rejects)",
    "spooled": "Messages made durable in the spool and acknowledged to the broker",
    "redelivered": "Broker redeliveries dropped as already processed",
    "retained_skipped": "Retained readings handed over at a SUBSCRIBE and not taken",
}


class StatsCollector(Collector):
    def __init__(self, stats: IngestStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        snapshot = self.stats.snapshot()
        for name, help_text in _COUNTERS.items():
            yield CounterMetricFamily(f"smartplace_ingest_{name}", help_text, value=snapshot[name])
        rejected = CounterMetricFamily(
            "smartplace_ingest_rejected", "Messages or readings rejected", labels=["reason"]
        )
        for reason, count in self.stats.reject_snapshot().items():
            rejected.add_metric([reason], count)
        yield rejected
        yield GaugeMetricFamily(
            "smartplace_ingest_spool_bytes", "Disk the spool uses", value=snapshot["spool_bytes"]
        )
        yield GaugeMetricFamily(
            "smartplace_ingest_oldest_unwritten_age_seconds",
            "Age of the oldest received message not yet in InfluxDB",
            value=self.stats.oldest_unwritten_age_s(time.time_ns()),
        )
        if self.stats.session_expiry_granted_s is not None:
            yield GaugeMetricFamily(
                "smartplace_ingest_mqtt_session_expiry_seconds",
                "How long the broker keeps ingest's session while it is away (as granted)",
                value=self.stats.session_expiry_granted_s,
            )
        for name, value, help_text in (
            ("acknowledging", self.stats.acknowledging, "0 while the spool is full"),
            ("mqtt_connected", self.stats.mqtt_connected, "1 while connected to the broker"),
            ("influx_ok", self.stats.influx_ok, "0 while InfluxDB refuses or cannot be reached"),
        ):
            yield GaugeMetricFamily(f"smartplace_ingest_{name}", help_text, value=int(value))


def problems(service: IngestService) -> list[str]:
    """Why the worker is not ready; empty when it is."""
    stats = service.stats
    found = []
    if not stats.mqtt_connected:
        found.append("not connected to the MQTT broker")
    if not stats.influx_ok:
        found.append("InfluxDB is not taking writes")
    if not stats.acknowledging:
        found.append("the spool is full")
    if stats.session_expiry_short():
        found.append(
            f"the MQTT broker keeps ingest's session {stats.session_expiry_granted_s} s, not the"
            f" {stats.session_expiry_configured_s} s configured: an outage longer than that loses"
            " readings"
        )
    return found


class HealthServer:
    def __init__(self, host: str, port: int, service: IngestService) -> None:
        registry = CollectorRegistry()
        registry.register(StatsCollector(service.stats))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._answer(200, generate_latest(registry), "text/plain; version=0.0.4")
                elif self.path == "/healthz":
                    alive = service.writer_alive()
                    self._json(200 if alive else 503, {"alive": alive})
                elif self.path == "/readyz":
                    found = problems(service)
                    self._json(503 if found else 200, {"ready": not found, "problems": found})
                else:
                    self._json(404, {"error": "try /healthz, /readyz or /metrics"})

            def _json(self, status: int, body: object) -> None:
                self._answer(status, orjson.dumps(body), "application/json")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ingest-http", daemon=True
        )
        self._thread.start()
        log.info("health and metrics on http://%s:%d/ (healthz, readyz, metrics)", host, self.port)

    @classmethod
    def maybe_start(cls, settings: IngestSettings, service: IngestService) -> HealthServer | None:
        if settings.http_port is None:
            return None
        try:
            return cls(settings.http_host, settings.http_port, service)
        except OSError as exc:
            # Probes are worth having, not worth refusing to ingest for.
            log.error(
                "cannot serve health and metrics on %s:%d (%s); ingesting without them",
                settings.http_host,
                settings.http_port,
                exc,
            )
            return None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
