"""The ingest worker: broker -> spool -> acknowledgement, and spool -> InfluxDB on a second thread.

Only wiring lives here. A message is acknowledged to the broker once it is
fsynced in the spool; the writer (``writer_thread.py``) takes it from there to
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
from collections.abc import Callable

from smartplace.config import MqttSettings, Settings
from smartplace.errors import InfluxAuthError, InfluxError, InfluxUnavailableError, StateFileError
from smartplace.influx import InfluxClient
from smartplace.ingest.device_health import DeviceHealth
from smartplace.ingest.health import HealthServer
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.mqtt_wire import Subscription
from smartplace.ingest.receive.shard import MessageShards, device_shard
from smartplace.ingest.receive.spool import Spool
from smartplace.ingest.receive.subscriber import MqttSubscriber
from smartplace.ingest.recovery.checkpoint import Checkpoint, load_checkpoint
from smartplace.ingest.recovery.rebuild import missing_windows, rebuild_windows
from smartplace.ingest.recovery.state import (
    aggregated_fields,
    configured_windows,
    install,
    restore_pipeline,
)
from smartplace.ingest.stats import IngestStats, stats_line
from smartplace.ingest.windows.site_daqi import SiteDaqi
from smartplace.ingest.windows.tumbling import WindowAggregator
from smartplace.ingest.write.points import Points
from smartplace.ingest.writer_thread import WriterThread, retry
from smartplace.schemas import ingest_subscription
from smartplace.schemas.kinds import KINDS
from smartplace.schemas.topics import parse_topic

log = logging.getLogger(__name__)

STATS_LOG_INTERVAL_S = 30.0
FULL_SPOOL_POLL_S = 0.2


class IngestService:
    def __init__(self, settings: Settings, stats: IngestStats | None = None) -> None:
        self.settings = settings
        self.stats = stats or IngestStats()
        self.stats.session_expiry_configured_s = settings.mqtt.session_expiry_s
        self.pipeline = Pipeline(settings)
        i = settings.ingest
        self.device_health = DeviceHealth(
            settings.mqtt.topic_prefix, i.device_health_interval_s, i.workers, i.worker_index
        )
        self._quiet_after = 0.0
        """Monotonic time before which the wall clock may not close windows (see ``_may_tick``)."""
        self.writer: WriterThread | None = None
        self._to_rebuild: dict[str, list[int]] = {}
        """Window lengths per kind that no saved state covered: rebuilt from InfluxDB."""
        self.health: HealthServer | None = None
        self._shards = MessageShards(settings.mqtt.topic_prefix, i.workers, i.max_payload_bytes)

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
            writer = self.writer = WriterThread(
                s,
                spool,
                self.pipeline,
                committed,
                self.stats,
                self._may_tick,
                self._rebuild if self._to_rebuild else None,
                spool.next_seq,
                self._roll_back_to,
            )
            writer.start()
            subscriber = MqttSubscriber(
                s.mqtt,
                subscriptions(s.mqtt),
                s.ingest.max_packet_bytes(),
                s.ingest.max_payload_bytes,
            )
            health = self.health = HealthServer.maybe_start(s.ingest, self)
            try:
                subscriber.start()
                log.info(
                    "ingest running topics=%s influx=%s spool=%s",
                    [sub.topic_filter for sub in subscriber.subscriptions],
                    s.influx.url,
                    spool.directory,
                )
                if ready is not None:
                    ready.set()
                self._receive(subscriber, spool, influx, stop)
            finally:
                subscriber.stop()
                self.stats.mqtt_connected = False
                self._drain(writer, spool)
                self._write_stats(influx, self._unwritten(spool))
                if health is not None:
                    health.stop()
                spool.close()
        log.info("ingest stopped %s", _kv(self.stats.snapshot()))

    def _recover(self, spool: Spool) -> int:
        """The committed offset, with the saved state poured into the pipeline built from the
        current settings; what it does not cover is rebuilt from InfluxDB once the spool's
        backlog is written (``rebuild.py``)."""
        checkpoint = load_checkpoint(spool.directory)
        self._restore(checkpoint)
        # A session's backlog comes before the retained registry records at a restart: the
        # ChirpStack events in it are routed by the devices the saved state knows.
        for record in self.pipeline.directory.devices.values():
            self._shards.registry.restore(record)
        if checkpoint is None:
            return 0
        if checkpoint.committed_seq > spool.next_seq:
            # The spool's segments are gone (removed by hand, or another disk): its numbering
            # starts again below the offset, and the writer would wait at the offset while
            # the records received meanwhile were never written.
            log.error(
                "the checkpoint's offset %d is past the spool's end %d (its segments were"
                " removed?): taking the spool from its end, with the saved state",
                checkpoint.committed_seq,
                spool.next_seq,
            )
            return spool.next_seq
        pending = spool.next_seq - checkpoint.committed_seq
        if pending > 0:
            log.info(
                "replaying %d spooled messages from offset %d (received before a crash or an"
                " outage; writing them again is harmless)",
                pending,
                checkpoint.committed_seq,
            )
        return checkpoint.committed_seq

    def _roll_back_to(
        self, checkpoint: Checkpoint | None
    ) -> tuple[Pipeline, Callable[[InfluxClient], Points] | None]:
        """On the writer thread, a batch having raised: the pipeline as of the checkpoint (as a
        start builds it), and the rebuild it needs, if any."""
        self._restore(checkpoint)
        return self.pipeline, self._rebuild if self._to_rebuild else None

    def _restore(self, checkpoint: Checkpoint | None) -> None:
        """``self.pipeline`` from the current settings and the checkpoint's state; the windows
        that state does not cover marked for the rebuild (``self._to_rebuild``)."""
        self.pipeline = Pipeline(self.settings)
        restored: frozenset[tuple[str, int]] = frozenset()
        ledger_restored = False
        if checkpoint is not None and checkpoint.state is not None:
            try:
                result = restore_pipeline(self.pipeline, checkpoint.state)
            except StateFileError as exc:
                log.error(
                    "SAVED STATE REFUSED (%s): open windows are rebuilt from InfluxDB instead",
                    exc,
                )
                self.pipeline = Pipeline(self.settings)  # nothing of the refused state in it
            else:
                restored, ledger_restored = result.windows, result.ledger
                for dropped in result.dropped:
                    log.warning("saved state for %s dropped", dropped)
        # Without a saved ledger, its open hours come back from InfluxDB before any batch.
        self.pipeline.ledger.resume_pending = not ledger_restored
        self._to_rebuild = missing_windows(configured_windows(self.pipeline), restored)
        for kind, lengths in self._to_rebuild.items():
            for aggregator in self.pipeline._aggregators_for(kind, aggregated_fields(kind)):
                aggregator.rebuilding = aggregator.length_ns // 1_000_000_000 in lengths
        # The site index is made from the same readings: rebuilt whenever they are.
        self.pipeline._daqi.rebuilding = any(KINDS[k].site_index for k in self._to_rebuild)

    def _rebuild(self, influx: InfluxClient) -> Points:
        """On the writer thread, the spool's backlog written: the missing windows, refilled."""
        fresh = self._empty_windows()
        replayed = {
            kind: held[0].replayed_from
            for kind, aggregators in self.pipeline._aggregators.items()
            if (held := [a for a in aggregators if a.rebuilding])
        }
        sites = self.pipeline.directory.sites
        daqi = SiteDaqi(self.pipeline.precision)
        daqi.rebuilding = self.pipeline._daqi.rebuilding
        try:
            points = rebuild_windows(
                influx,
                fresh,
                time.time_ns(),
                sites,
                replayed,
                self.pipeline.precision,
                daqi if daqi.rebuilding else None,
                self._ours_device,
            )
        except InfluxError as exc:
            if isinstance(exc, InfluxUnavailableError | InfluxAuthError):
                raise  # retried: InfluxDB may answer later
            # Not a state to stop ingest for: say plainly what these windows will lack.
            log.error(
                "COULD NOT REBUILD windows %s from InfluxDB (%s): they start empty, and their"
                " aggregates hold only readings from now on",
                self._to_rebuild,
                exc,
            )
            points = Points()
            fresh = self._empty_windows()
            daqi.rebuilding = False
        for aggregators in fresh.values():
            for aggregator in aggregators:
                install(self.pipeline, aggregator)
        if self.pipeline._daqi.rebuilding:
            self.pipeline._daqi = daqi
        self._to_rebuild = {}
        return points

    def _ours_device(self, device_id: str) -> bool:
        """Whether a device is this worker's: its windows are held here, no other worker's."""
        ingest = self.settings.ingest
        return ingest.workers == 1 or device_shard(device_id, ingest.workers) == ingest.worker_index

    def _empty_windows(self) -> dict[str, list[WindowAggregator]]:
        return {
            kind: [
                self.pipeline.new_aggregator(kind, aggregated_fields(kind), length_s)
                for length_s in lengths
            ]
            for kind, lengths in self._to_rebuild.items()
        }

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
            self.stats.spool_bytes = spool.size_bytes
            self.stats.mqtt_connected = subscriber.connected
            self.stats.session_expiry_granted_s = subscriber.session_expiry_granted_s
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
            if spool.is_full:
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
        """The messages for this worker's devices (all of them when it is the only one), less
        the retained readings the broker hands over at each SUBSCRIBE (README, Retained
        messages): only the registry's retained records are taken."""
        ingest, prefix = self.settings.ingest, self.settings.mqtt.topic_prefix
        if any(m.retained for m in batch):
            kept = [m for m in batch if not m.retained or is_registry_topic(prefix, m.topic)]
            self.stats.record_retained_skipped(len(batch) - len(kept))
            batch = kept
        if ingest.workers == 1:
            return batch
        return [m for m in batch if self._shards.of(m) == ingest.worker_index]

    def _unwritten(self, spool: Spool) -> int:
        """The backlog: messages acknowledged (in the spool) and not yet written to InfluxDB."""
        return spool.next_seq - (self.writer.offsets.written if self.writer is not None else 0)

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

    def writer_alive(self) -> bool:
        """Whether the writer thread is running (what the liveness probe asks)."""
        return self.writer is not None and self.writer.thread.is_alive()

    def _check_writer(self) -> None:
        if self.writer is not None and self.writer.error is not None:
            raise RuntimeError("the writer thread failed") from self.writer.error

    def _drain(self, writer: WriterThread, spool: Spool) -> None:
        """Graceful stop: let the writer empty the spool and flush the windows, within the timeout."""
        writer.finishing.set()
        writer.thread.join(self.settings.ingest.drain_timeout_s)
        if writer.thread.is_alive():
            writer.give_up.set()
            writer.thread.join()
        left = spool.next_seq - writer.offsets.committed
        if writer.drained:
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


def subscriptions(mqtt: MqttSettings) -> list[Subscription]:
    """What ingest subscribes to. Under the prefix are the registry's records, retained, which a
    worker needs again whenever it subscribes (Retain Handling 0); the extra subscriptions
    carry only readings, so the broker need send none of their retained messages (2)."""
    return [
        Subscription(ingest_subscription(mqtt.topic_prefix), retain_handling=0),
        *(Subscription(f, retain_handling=2) for f in mqtt.extra_subscriptions),
    ]


def is_registry_topic(prefix: str, topic: str) -> bool:
    parsed = parse_topic(prefix, topic)
    return parsed is not None and parsed.leaf == "registry"


def _kv(values: dict[str, int]) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items())
