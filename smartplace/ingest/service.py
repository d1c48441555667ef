"""The ingest worker: broker -> spool -> acknowledgement, and spool -> InfluxDB on a second thread.

Only wiring lives here. A message is acknowledged to the broker once it is
fsynced in the spool; the writer (``drainer.py``) takes it from there to
InfluxDB. While InfluxDB is down the spool grows; when it reaches its limit
this loop stops taking messages, so nothing more is acknowledged and the
broker, which sends at most our receive-maximum unacknowledged, holds the
rest (unread, in the broker or the socket's buffers). Memory stays bounded by
one micro-batch received and one being written (``batch_max_bytes`` each).
"""

from __future__ import annotations

import logging
import threading
import time

from smartplace.config import Settings
from smartplace.errors import InfluxError
from smartplace.influx import InfluxClient
from smartplace.ingest.checkpoint import load_checkpoint
from smartplace.ingest.decode import RawMessage
from smartplace.ingest.device_health import DeviceHealth
from smartplace.ingest.drainer import Drainer, retry
from smartplace.ingest.health import HealthServer
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.shard import shard_of
from smartplace.ingest.spool import Spool
from smartplace.ingest.stats import IngestStats, stats_line
from smartplace.ingest.subscriber import MqttSubscriber
from smartplace.schemas import ingest_subscription

log = logging.getLogger(__name__)

STATS_LOG_INTERVAL_S = 30.0
FULL_SPOOL_POLL_S = 0.2


class IngestService:
    def __init__(self, settings: Settings, stats: IngestStats | None = None) -> None:
        self.settings = settings
        self.stats = stats or IngestStats()
        self.pipeline = Pipeline(settings)
        i = settings.ingest
        self.device_health = DeviceHealth(
            settings.mqtt.topic_prefix, i.device_health_interval_s, i.workers, i.worker_index
        )
        self._quiet_after = 0.0
        """Monotonic time before which the wall clock may not close windows (see ``_may_tick``)."""
        self.drainer: Drainer | None = None
        self.health: HealthServer | None = None

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        """Run until ``stop`` is set, then drain the spool (within the drain timeout) and return."""
        s = self.settings
        spool = Spool(s.spool_directory(), s.ingest.spool_max_bytes)
        committed = self._recover(spool)
        with InfluxClient(s.influx) as influx:
            if s.influx.create_database and not retry(
                influx.ensure_storage, stop, "create database", self.stats, s
            ):
                return
            drainer = self.drainer = Drainer(
                s, spool, self.pipeline, committed, self.stats, self._may_tick
            )
            drainer.start()
            subscriber = MqttSubscriber(
                s.mqtt,
                [ingest_subscription(s.mqtt.topic_prefix), *s.mqtt.extra_subscriptions],
                s.ingest.max_packet_bytes(),
            )
            health = self.health = HealthServer.maybe_start(s.ingest, self)
            try:
                subscriber.start()
                log.info(
                    "ingest running topics=%s influx=%s spool=%s",
                    subscriber.subscriptions,
                    s.influx.url,
                    spool.directory,
                )
                if ready is not None:
                    ready.set()
                self._receive(subscriber, spool, influx, stop)
            finally:
                subscriber.stop()
                self.stats.mqtt_connected = False
                self._drain(drainer, spool)
                self._write_stats(influx, self._unwritten(spool))
                if health is not None:
                    health.stop()
                spool.close()
        log.info("ingest stopped %s", _kv(self.stats.snapshot()))

    def _recover(self, spool: Spool) -> int:
        """The committed offset, with the pipeline's windows restored to it."""
        checkpoint = load_checkpoint(spool.directory)
        if checkpoint is None:
            return 0
        if checkpoint.state is not None:
            self.pipeline = checkpoint.state
        pending = spool.next_seq - checkpoint.committed_seq
        if pending > 0:
            log.info(
                "replaying %d spooled messages from offset %d (received before a crash or an"
                " outage; writing them again is harmless)",
                pending,
                checkpoint.committed_seq,
            )
        return checkpoint.committed_seq

    def _receive(
        self,
        subscriber: MqttSubscriber,
        spool: Spool,
        influx: InfluxClient,
        stop: threading.Event,
    ) -> None:
        ingest = self.settings.ingest
        next_stats = time.monotonic() + ingest.stats_interval_s
        next_log = time.monotonic() + STATS_LOG_INTERVAL_S
        seen_connect = 0.0
        while not stop.is_set():
            self._check_writer()
            now = time.monotonic()
            self.stats.spool_bytes = spool_bytes = spool.size_bytes
            self.stats.mqtt_connected = subscriber.connected
            if now >= next_stats:
                self._write_stats(influx, self._unwritten(spool))
                next_stats = now + ingest.stats_interval_s
            self.device_health.write_if_due(
                influx, self.pipeline.directory.devices, self.settings.influx.raw_retention_policy
            )
            if now >= next_log:
                log.info(
                    "ingest stats %s backlog=%d", _kv(self.stats.snapshot()), self._unwritten(spool)
                )
                next_log = now + STATS_LOG_INTERVAL_S
            if subscriber.connected_at != seen_connect:
                seen_connect = subscriber.connected_at
                self._hold_ticks()  # the broker may be sending a backlog kept while we were away
            if spool_bytes >= spool.max_bytes:
                self._hold_back(spool)
                subscriber.keep_alive()
                stop.wait(FULL_SPOOL_POLL_S)
                continue
            if not self.stats.acknowledging:
                log.warning("SPOOL HAS ROOM AGAIN: acknowledging the broker's backlog")
                self.stats.acknowledging = True
                self._hold_ticks()
            batch = subscriber.take(
                ingest.batch_max_messages, ingest.batch_max_bytes, ingest.batch_max_wait_s
            )
            if not batch:
                continue
            ours = self._ours(batch)
            spool.append(ours)
            self.device_health.heard(ours)
            subscriber.ack(batch)  # another worker spools the rest
            self.stats.record_spooled(len(ours))

    def _ours(self, batch: list[RawMessage]) -> list[RawMessage]:
        """The messages for this worker's devices (all of them when it is the only one)."""
        ingest, prefix = self.settings.ingest, self.settings.mqtt.topic_prefix
        if ingest.workers == 1:
            return batch
        return [
            m for m in batch if shard_of(prefix, m.topic, ingest.workers) == ingest.worker_index
        ]

    def _unwritten(self, spool: Spool) -> int:
        """The backlog: messages acknowledged (in the spool) and not yet written to InfluxDB."""
        return spool.next_seq - (self.drainer.next_seq if self.drainer is not None else 0)

    def _hold_back(self, spool: Spool) -> None:
        if self.stats.acknowledging:
            log.error(
                "SPOOL FULL (%d of %d bytes; InfluxDB has not taken data for a while): no longer"
                " acknowledging, so the broker holds the backlog; resuming by itself once the"
                " writer drains",
                spool.size_bytes,
                spool.max_bytes,
            )
            self.stats.acknowledging = False

    def _hold_ticks(self) -> None:
        """A backlog may be on its way from the broker: its devices are not quiet, only delayed.
        Let the wall clock close windows again once a grace period has passed."""
        self._quiet_after = time.monotonic() + self.settings.ingest.window_grace_s

    def _may_tick(self) -> bool:
        return self.stats.acknowledging and time.monotonic() >= self._quiet_after

    def _check_writer(self) -> None:
        if self.drainer is not None and self.drainer.error is not None:
            raise RuntimeError("the writer thread failed") from self.drainer.error

    def _drain(self, drainer: Drainer, spool: Spool) -> None:
        """Graceful stop: let the writer empty the spool and flush the windows, within the timeout."""
        drainer.finishing.set()
        drainer.thread.join(self.settings.ingest.drain_timeout_s)
        if drainer.thread.is_alive():
            drainer.give_up.set()
            drainer.thread.join()
        left = spool.next_seq - drainer.committed_seq
        if drainer.drained:
            log.info("drained: every received message is in InfluxDB")
        else:
            log.warning(
                "stopping with %d messages in the spool (InfluxDB did not take them within %.0f s);"
                " they are written when ingest next starts",
                left,
                self.settings.ingest.drain_timeout_s,
            )

    def _write_stats(self, influx: InfluxClient, backlog: int) -> None:
        """One attempt: counters are for watching the pipeline, not data to hold readings back for."""
        line = stats_line(self.settings.mqtt.client_id, self.stats, backlog, time.time_ns())
        try:
            influx.write([line], self.settings.influx.raw_retention_policy)
        except InfluxError as exc:
            log.warning("could not write ingest stats: %s", exc)


def _kv(values: dict[str, int]) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items())
