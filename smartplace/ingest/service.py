"""The ingest worker: wires subscriber -> pipeline -> InfluxDB -> acknowledgement.

Only wiring lives here. A batch is acknowledged to the broker after InfluxDB
accepted it (HTTP 204); while InfluxDB is unreachable the service retries
with backoff and acknowledges nothing, so the broker keeps the backlog.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from functools import partial

from smartplace.config import Settings
from smartplace.errors import InfluxError, InfluxUnavailableError
from smartplace.influx import InfluxClient
from smartplace.ingest.lineprotocol import with_precision
from smartplace.ingest.pipeline import Pipeline, PipelineOutput
from smartplace.ingest.stats import IngestStats, stats_line
from smartplace.ingest.subscriber import MqttSubscriber
from smartplace.ingest.writer import write_isolating_refusals
from smartplace.schemas import ingest_subscription
from smartplace.schemas.reasons import Reject, RejectReason

log = logging.getLogger(__name__)

STATS_LOG_INTERVAL_S = 30.0
TICK_INTERVAL_S = 1.0
"""How often, while nothing arrives, the wall clock gets to close quiet devices' windows."""


class IngestService:
    def __init__(self, settings: Settings, stats: IngestStats | None = None) -> None:
        self.settings = settings
        self.stats = stats or IngestStats()
        self.pipeline = Pipeline(settings)

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        """Run until ``stop`` is set, then drain what was received and return."""
        s = self.settings
        with InfluxClient(s.influx) as influx:
            if s.influx.create_database:
                self._retry(influx.ensure_storage, stop, "create database")
            subscriber = MqttSubscriber(
                s.mqtt,
                [ingest_subscription(s.mqtt.topic_prefix), *s.mqtt.extra_subscriptions],
                s.ingest.queue_max_messages,
            )
            subscriber.start()
            log.info("ingest running topics=%s influx=%s", subscriber.subscriptions, s.influx.url)
            if ready is not None:
                ready.set()
            try:
                self._loop(subscriber, influx, stop)
            finally:
                subscriber.stop()
        log.info("ingest stopped %s", _kv(self.stats.snapshot()))

    def _loop(
        self, subscriber: MqttSubscriber, influx: InfluxClient, stop: threading.Event
    ) -> None:
        ingest = self.settings.ingest
        next_log = time.monotonic() + STATS_LOG_INTERVAL_S
        next_tick = time.monotonic() + TICK_INTERVAL_S
        next_stats = time.monotonic() + ingest.stats_interval_s
        while True:
            stopping = stop.is_set()
            if time.monotonic() >= next_stats:
                self._write_stats(influx, subscriber.backlog)
                next_stats = time.monotonic() + ingest.stats_interval_s
            # Once stopping, take only what is already queued: drain, then leave.
            batch = subscriber.take(
                ingest.batch_max_messages, 0.0 if stopping else ingest.batch_max_wait_s
            )
            if not batch:
                if stopping:
                    # Drained: write what the open windows hold (one attempt: we are stopping), then go.
                    self._write(influx, self.pipeline.flush(), stop, batch=False)
                    self._write_stats(influx, subscriber.backlog)
                    return
                if time.monotonic() >= next_tick:
                    self._write(influx, self.pipeline.tick(time.time_ns()), stop, batch=False)
                    next_tick = time.monotonic() + TICK_INTERVAL_S
                continue
            out = self.pipeline.process(batch)
            self.stats.record_batch(
                len(batch),
                out.accepted,
                [r.reason.value for r in out.rejects],
                out.late_beyond_grace,
                out.flag_counts,
            )
            for reject in out.rejects:
                log.info(
                    "reject reason=%s topic=%s detail=%r",
                    reject.reason.value,
                    reject.topic,
                    reject.detail,
                )
            if not self._write(influx, out, stop):
                return  # stopped while InfluxDB was down: unacknowledged, the broker redelivers
            subscriber.ack(batch)
            if time.monotonic() >= next_log:
                log.info(
                    "ingest stats %s backlog=%d", _kv(self.stats.snapshot()), subscriber.backlog
                )
                next_log = time.monotonic() + STATS_LOG_INTERVAL_S

    def _write_stats(self, influx: InfluxClient, backlog: int) -> None:
        """One attempt: counters are for watching the pipeline, not data to hold readings back for."""
        line = stats_line(self.settings.mqtt.client_id, self.stats, backlog, time.time_ns())
        try:
            influx.write([line], self.settings.influx.raw_retention_policy)
        except InfluxError as exc:
            log.warning("could not write ingest stats: %s", exc)

    def _write(
        self, influx: InfluxClient, out: PipelineOutput, stop: threading.Event, batch: bool = True
    ) -> bool:
        """Write one batch's points (or, not a batch, the windows a tick or flush made due);
        False only when stopped before InfluxDB took them."""
        if not batch and not out.agg_lines:
            return True
        influx_settings = self.settings.influx

        precision = influx_settings.precision
        refused: list[tuple[str, str]] = []

        def write() -> None:
            refused.clear()  # a retried attempt starts afresh
            for lines, policy in (
                (out.raw_lines, influx_settings.raw_retention_policy),
                (out.agg_lines, influx_settings.agg_retention_policy),
            ):
                refused.extend(
                    write_isolating_refusals(
                        partial(influx.write, retention_policy=policy, precision=precision),
                        with_precision(lines, precision),
                    )
                )
            if refused:
                rejects = [self._refusal(line, reason) for line, reason in refused]
                influx.write(
                    with_precision(self.pipeline.reject_points(rejects), precision),
                    influx_settings.raw_retention_policy,
                    precision,
                )

        try:
            if not self._retry(write, stop, "write"):
                return False
        except InfluxError as exc:
            # Even the rejects were refused: nothing more to try for this batch.
            self.stats.write_refused_lines += len(out.raw_lines) + len(out.agg_lines)
            self.stats.record_written(0, 0, batch)
            log.error("write refused status=%s error=%s", exc.status_code, exc)
            return True
        if refused:
            self.stats.write_refused_lines += len(refused)
            self.stats.rejected_by_reason.update(
                [RejectReason.REFUSED_BY_DATABASE.value] * len(refused)
            )
            log.error(
                "influxdb refused lines=%d first=%r reason=%s",
                len(refused),
                refused[0][0][:200],
                refused[0][1],
            )
        self.stats.record_written(len(out.raw_lines) - len(out.rejects), len(out.agg_lines), batch)
        return True

    @staticmethod
    def _refusal(line: str, reason: str) -> Reject:
        return Reject(
            RejectReason.REFUSED_BY_DATABASE, reason[:200], "", None, line[:256], time.time_ns()
        )

    def _retry(self, action: Callable[[], None], stop: threading.Event, what: str) -> bool:
        """Run ``action`` until it succeeds (True) or ``stop`` is set (False).

        Retries what may pass later (unreachable, 5xx, bad credentials that an
        operator can fix); raises what never will.
        """
        delay_s = 0.5
        while True:
            try:
                action()
                return True
            except InfluxUnavailableError as exc:
                log.warning(
                    "influx unavailable action=%s retry_in_s=%.1f error=%s", what, delay_s, exc
                )
            except InfluxError as exc:
                if exc.status_code not in (401, 403):
                    raise
                log.error("INFLUXDB REFUSES OUR CREDENTIALS action=%s: %s; holding data", what, exc)
            self.stats.write_retries += 1
            if stop.wait(delay_s * random.uniform(0.5, 1.0)):  # noqa: S311 - jitter, not crypto
                return False
            delay_s = min(delay_s * 2, self.settings.ingest.write_retry_max_s)


def _kv(values: dict[str, int]) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items())
