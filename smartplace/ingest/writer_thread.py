"""The writing side of ingest: spool -> pipeline -> InfluxDB -> committed offset.

Runs on its own thread, so a slow or absent InfluxDB never stops messages
being received and made durable. It reads the spool in order from the
committed offset, processes each micro-batch, writes the points (retrying
with backoff and jitter what may pass later) and, every commit interval,
checkpoints the offset together with the open windows. A batch whose write
has not succeeded is never committed: after a crash it is processed again.
One batch's write is in flight while the next is processed; writes land in
order, and nothing is committed while a write is in flight.

A message that makes the pipeline raise after decoding (where decoding's own
isolation cannot reach: quality, windows, ledger) may have left the
pipeline's state half-updated. The state is then rolled back to the last
checkpoint and the records after it replayed (exactly what a restart would
do), the failed batch a record at a time; the record that raises alone is
stored as an internal_error reject and left out of every later replay.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from smartplace.config import Settings
from smartplace.errors import InfluxAuthError, InfluxError, InfluxUnavailableError, StateFileError
from smartplace.influx import InfluxClient
from smartplace.ingest.decode.failures import internal_error
from smartplace.ingest.pipeline import Pipeline, PipelineOutput
from smartplace.ingest.receive.spool import Spool, SpooledMessage
from smartplace.ingest.recovery.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from smartplace.ingest.recovery.ledger_resume import resume_ledger
from smartplace.ingest.recovery.state import export_pipeline, restore_pipeline
from smartplace.ingest.stats import IngestStats
from smartplace.ingest.write.points import Points
from smartplace.ingest.write.refusals import write_isolating_refusals
from smartplace.schemas.reasons import Reject, RejectReason

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0
"""How often, while nothing arrives, the wall clock gets to close quiet devices' windows."""


Recover = Callable[[Checkpoint | None], tuple[Pipeline, Callable[[InfluxClient], Points] | None]]
"""A checkpoint (None: none usable) -> the pipeline from it, and its rebuild if one is needed."""


class WriterThread:
    def __init__(
        self,
        settings: Settings,
        spool: Spool,
        pipeline: Pipeline,
        committed_seq: int,
        stats: IngestStats,
        may_tick: Callable[[], bool],
        rebuild: Callable[[InfluxClient], Points] | None = None,
        replay_until: int = 0,
        recover: Recover | None = None,
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.pipeline = pipeline
        self.offsets = Offsets(committed_seq, committed_seq, committed_seq)
        self.stats = stats
        self.may_tick = may_tick
        self.rebuild = rebuild
        """Windows to rebuild from InfluxDB once the spool below ``replay_until`` is written
        (so InfluxDB holds every reading received so far): the aggregates it returns are due."""
        self.replay_until = replay_until
        self.recover = recover
        """How a roll-back gets the pipeline as of a checkpoint (None: the checkpoint's state
        or, without one, empty) and the rebuild it then needs, as a start would."""
        """Whether no backlog can be waiting elsewhere (the broker), so quiet means quiet."""
        self.finishing = threading.Event()
        """Set on a graceful stop: write what the spool holds, flush the windows, commit, return."""
        self.give_up = threading.Event()
        """Set when the drain timeout passes: stop retrying and leave the rest for the next start."""
        self.error: BaseException | None = None
        self.drained = False
        self.poisoned: dict[int, Reject] = {}
        """Spool records that made the pipeline raise, by seq: each stored as this reject."""
        self._isolate_through = -1
        """Records up to this seq go through the pipeline one at a time (a batch raised)."""
        self._replay_through = -1
        """Records up to this seq were counted before a roll-back: not counted again."""
        self.thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            with InfluxClient(self.settings.influx) as influx:
                self._loop(influx)
        except BaseException as exc:
            self.error = exc
            log.exception("the writer stopped on an error; received data stays in the spool")

    def _loop(self, influx: InfluxClient) -> None:
        ingest = self.settings.ingest
        next_commit = time.monotonic() + ingest.commit_interval_s
        next_tick = time.monotonic() + TICK_INTERVAL_S
        # A batch's write runs while the next batch goes through the pipeline, so waiting for
        # InfluxDB and the pipeline's work overlap. Writes land in order, and a commit first
        # lands the write in flight: a checkpoint's windows hold exactly the batches below
        # its offset.
        with ThreadPoolExecutor(1, thread_name_prefix="ingest-influx") as sender:
            in_flight: _InFlight | None = None
            self.offsets.read = self.offsets.written
            while True:
                if self.pipeline.ledger.resume_pending and not self._resume_ledger(influx):
                    return
                if self.rebuild is not None and self.offsets.read >= self.replay_until:
                    if in_flight is not None:
                        if not self._land(influx, in_flight):
                            return
                        in_flight = None
                    if not self._rebuild(influx):
                        return
                records = self.spool.read(
                    self.offsets.read, self._batch_limit(), ingest.batch_max_bytes
                )
                if not records:
                    if in_flight is not None:
                        if not self._land(influx, in_flight):
                            return  # gave up while InfluxDB was down: the spool keeps the batch
                        in_flight = None
                        continue
                    if self.finishing.is_set():
                        self._finish(influx)
                        return
                    if time.monotonic() >= next_tick and self.may_tick():
                        ticked = self._tick()
                        if ticked is not None:
                            self._write(influx, ticked, batch=False)
                        next_tick = time.monotonic() + TICK_INTERVAL_S
                    if (
                        self.offsets.written > self.offsets.committed
                        and time.monotonic() >= next_commit
                    ):
                        self._commit()
                        next_commit = time.monotonic() + ingest.commit_interval_s
                    self.spool.wait_for(
                        self.offsets.read, min(TICK_INTERVAL_S, ingest.batch_max_wait_s)
                    )
                    continue
                out = self._process(records)
                if out is None:  # rolled back to the last checkpoint: replay from there
                    if in_flight is not None and not self._land(influx, in_flight):
                        return
                    in_flight = None
                    self._roll_back()
                    self.offsets.read = self.offsets.written
                    continue
                counted = records[0].seq > self._replay_through
                if counted:
                    self._count(len(records), out)
                if in_flight is not None and not self._land(influx, in_flight):
                    return
                # Taken now, with the batch before settled: its refusals are in these totals.
                out.raw.extend(self.pipeline.ledger_points())
                self.offsets.read = records[-1].seq + 1
                in_flight = _InFlight(
                    sender.submit(self._send, influx, out, True), out, self.offsets.read, counted
                )
                self.stats.unwritten_since_ns = records[0].message.received_ns
                if time.monotonic() >= next_commit:
                    if not self._land(influx, in_flight):
                        return
                    in_flight = None
                    self._commit()
                    next_commit = time.monotonic() + ingest.commit_interval_s

    def _batch_limit(self) -> int:
        """A record at a time while finding the one that raised; batches that end where the
        replay does (so what was counted once is not counted again); else the usual."""
        if self.offsets.read <= self._isolate_through:
            return 1
        if self.offsets.read <= self._replay_through:
            return min(
                self.settings.ingest.batch_max_messages,
                self._replay_through - self.offsets.read + 1,
            )
        return self.settings.ingest.batch_max_messages

    def _process(self, records: list[SpooledMessage]) -> PipelineOutput | None:
        """The batch through the pipeline; None when it raised (the state must be rolled back).

        A record alone that raises is poisoned: from then on it is its reject."""
        poisoned = [self.poisoned[r.seq] for r in records if r.seq in self.poisoned]
        messages = [r.message for r in records if r.seq not in self.poisoned]
        try:
            return self.pipeline.process(messages, poisoned)
        except Exception as exc:
            if not messages:
                raise  # the settled rejects alone broke it: replaying would loop for ever
            if len(messages) == 1:
                record = next(r for r in records if r.seq not in self.poisoned)
                message = record.message
                self.poisoned[record.seq] = internal_error(
                    message.topic,
                    message.payload,
                    message.received_ns,
                    self.settings.mqtt.topic_prefix,
                    exc,
                )
            else:
                log.error(
                    "a batch made the pipeline fail (%s): rolling back to spool record %d and"
                    " replaying, this batch a record at a time",
                    type(exc).__name__,
                    self.offsets.committed,
                    exc_info=exc,
                )
                self._isolate_through = max(self._isolate_through, records[-1].seq)
            self._replay_through = max(self._replay_through, records[0].seq - 1)
            return None

    def _roll_back(self) -> None:
        """The pipeline as the last checkpoint holds it (a fresh one if none was saved)."""
        checkpoint = load_checkpoint(self.spool.directory)
        if self.recover is not None:
            # As a start would: the state at the committed offset, the windows it does not
            # cover rebuilt from InfluxDB once the replay reaches the batch that raised.
            usable = checkpoint
            if usable is not None and usable.committed_seq != self.offsets.committed:
                usable = None
            self.pipeline, rebuild = self.recover(usable)
            if rebuild is not None:
                self.rebuild = rebuild
                self.replay_until = max(self.replay_until, self.offsets.read)
            self.offsets.written = self.offsets.committed
            return
        pipeline = Pipeline(self.settings)
        if (
            checkpoint is not None
            and checkpoint.state is not None
            and checkpoint.committed_seq == self.offsets.committed
        ):
            try:
                restore_pipeline(pipeline, checkpoint.state)
            except StateFileError as exc:
                log.error(
                    "rolling back: the checkpoint's state is refused (%s); starting empty", exc
                )
                pipeline = Pipeline(self.settings)
        self.pipeline = pipeline
        self.offsets.written = self.offsets.committed

    def _tick(self) -> PipelineOutput | None:
        """What the clock makes due; None (and nothing written) should ticking fail."""
        try:
            return self.pipeline.tick(time.time_ns())
        except Exception:
            log.exception("closing quiet windows failed; they close with the next reading")
            return None

    def _land(self, influx: InfluxClient, in_flight: _InFlight) -> bool:
        """Wait for a batch's write and finish it here (refusals touch the pipeline, which
        only this thread may); False when told to give up before InfluxDB took it."""
        sent = in_flight.future.result()
        if sent is None:
            return False
        if not self._settle(influx, in_flight.out, sent, batch=True, counted=in_flight.counted):
            return False
        self.offsets.written = in_flight.written_after
        self.stats.unwritten_since_ns = 0
        return True

    def _finish(self, influx: InfluxClient) -> None:
        """Drained: write what the open windows hold, and commit them with the offset."""
        if self._write(influx, self.pipeline.flush(), batch=False):
            self._commit()
            self.drained = True

    def _rebuild(self, influx: InfluxClient) -> bool:
        """Rebuild the windows no saved state covered, and write what they make due."""
        assert self.rebuild is not None
        rebuild, out = self.rebuild, PipelineOutput()

        def run() -> None:
            out.agg = rebuild(influx)

        if not retry(run, self.give_up, "rebuild windows", self.stats, self.settings):
            return False
        self.rebuild = None
        return self._write(influx, out, batch=False)

    def _resume_ledger(self, influx: InfluxClient) -> bool:
        """Before a batch of a pipeline with no saved state: its ledger's open hours."""
        ledger = self.pipeline.ledger

        first = self.spool.read(self.offsets.read, 1)
        oldest_arrival_ns = first[0].message.received_ns if first else None

        def run() -> None:
            resume_ledger(influx, ledger, time.time_ns(), oldest_arrival_ns)

        return retry(
            run,
            self.give_up,
            "resume the delivery ledger",
            self.stats,
            self.settings,
        )

    def _commit(self) -> None:
        if self.rebuild is not None:
            # The state leaves out windows waiting for their rebuild, and the records the
            # replay has read are what say where it starts: none may be released before it.
            return
        save_checkpoint(self.spool.directory, self.offsets.written, export_pipeline(self.pipeline))
        self.offsets.committed = self.offsets.written
        self.spool.release(self.offsets.committed)

    def _count(self, received: int, out: PipelineOutput) -> None:
        self.stats.record_batch(
            received,
            out.accepted,
            [r.reason.value for r in out.rejects],
            out.late_beyond_grace,
            out.flag_counts,
            out.redelivered,
            out.lorawan_frames,
        )
        for reject in out.rejects:
            log.info(
                "reject reason=%s topic=%s detail=%r",
                reject.reason.value,
                reject.topic,
                reject.detail,
            )

    # -- writing -------------------------------------------------------------------

    def _write(self, influx: InfluxClient, out: PipelineOutput, batch: bool = True) -> bool:
        """Write one batch's points (or, not a batch, the windows a tick or flush made due);
        False only when told to give up before InfluxDB took them."""
        sent = self._send(influx, out, batch)
        return sent is not None and self._settle(influx, out, sent, batch)

    def _send(self, influx: InfluxClient, out: PipelineOutput, batch: bool) -> _Sent | None:
        """The points to InfluxDB, retrying what may pass later; None when told to give up.
        Touches no pipeline state: it may run beside the next batch's processing."""
        if not batch and not out.agg.lines:
            return _Sent()
        influx_settings = self.settings.influx
        precision = influx_settings.precision  # the pipeline formatted the points in it
        refused: list[tuple[Points, int, str]] = []

        def write() -> None:
            refused.clear()  # a retried attempt starts afresh
            for points, policy in (
                (out.raw, influx_settings.raw_retention_policy),
                (out.agg, influx_settings.agg_retention_policy),
            ):
                write_in = partial(influx.write, retention_policy=policy, precision=precision)
                refused.extend(
                    (points, index, reason)
                    for index, reason in write_isolating_refusals(write_in, points.lines)
                )

        try:
            if not retry(write, self.give_up, "write", self.stats, self.settings):
                return None
        except InfluxError as exc:
            self._all_refused(out, batch, exc)
            return _Sent(settled=True)
        return _Sent(refused)

    def _settle(
        self,
        influx: InfluxClient,
        out: PipelineOutput,
        sent: _Sent,
        batch: bool,
        counted: bool = True,
    ) -> bool:
        """Record what a write did; lines InfluxDB refused become rejects, and readings among
        them leave the ledger's count (named by the device each point was made for). False
        only when told to give up before the rejects were written."""
        if sent.settled:
            return True
        refused = sent.refused
        if refused:
            rejects = [_refusal(points.lines[i], reason) for points, i, reason in refused]
            lines = self.pipeline.reject_points(rejects)
            if batch:
                readings = [
                    (device, points.reading_arrival(i))
                    for points, i, _ in refused
                    if (device := points.reading_device(i)) is not None
                ]
                lines += self.pipeline.ledger_refusals(readings).lines
            influx_settings = self.settings.influx

            def write_rejects() -> None:
                influx.write(lines, influx_settings.raw_retention_policy, influx_settings.precision)

            try:
                if not retry(write_rejects, self.give_up, "write", self.stats, self.settings):
                    return False
            except InfluxError as exc:
                # Even the rejects were refused: nothing more to try for this batch.
                self._all_refused(out, batch, exc)
                return True
            self.stats.write_refused_lines += len(refused)
            self.stats.rejected_by_reason.update(
                [RejectReason.REFUSED_BY_DATABASE.value] * len(refused)
            )
            points, first, reason = refused[0]
            log.error(
                "influxdb refused lines=%d first=%r reason=%s",
                len(refused),
                points.lines[first][:200],
                reason,
            )
        readings_refused = sum(
            1 for points, i, _ in refused if points.reading_device(i) is not None
        )
        aggregates_refused = sum(1 for points, _, _ in refused if points is out.agg)
        self.stats.record_written(
            out.accepted - readings_refused,
            len(out.agg.lines) - aggregates_refused,
            batch and counted,  # a batch replayed after a roll-back was counted once before
        )
        return True

    def _all_refused(self, out: PipelineOutput, batch: bool, exc: InfluxError) -> None:
        self.stats.write_refused_lines += len(out.raw.lines) + len(out.agg.lines)
        self.stats.record_written(0, 0, batch)
        log.error("write refused status=%s error=%s", exc.status_code, exc)


@dataclass(slots=True)
class Offsets:
    """How far the writer has come through the spool, as record sequence numbers; always
    committed <= written <= read <= the spool's next record (``Spool.next_seq``)."""

    committed: int
    """Saved in the checkpoint with the state: a restart replays the spool from here."""
    written: int
    """Every record below it is in InfluxDB (its batch's write landed)."""
    read: int
    """Every record below it has gone through the pipeline (its write may be in flight)."""


@dataclass(frozen=True, slots=True)
class _Sent:
    """A finished write: the lines InfluxDB refused (each as its points and place, with the
    reason)."""

    refused: list[tuple[Points, int, str]] = field(default_factory=list)
    settled: bool = False
    """Already recorded: InfluxDB refused the whole batch."""


@dataclass(frozen=True, slots=True)
class _InFlight:
    future: Future[_Sent | None]
    out: PipelineOutput
    written_after: int
    """The spool offset after the batch: written once its write lands, then committed."""
    counted: bool = True
    """Counted in the stats' batches (not a replay of records counted before a roll-back)."""


def _refusal(line: str, reason: str) -> Reject:
    return Reject(
        RejectReason.REFUSED_BY_DATABASE, reason[:200], "", None, line[:256], time.time_ns()
    )


def retry(
    action: Callable[[], None],
    give_up: threading.Event,
    what: str,
    stats: IngestStats,
    settings: Settings,
) -> bool:
    """Run ``action`` until it succeeds (True) or ``give_up`` is set (False).

    Retries what may pass later (unreachable, timeouts, 5xx; and bad credentials,
    which an operator can fix while nothing is dropped); raises what never will.
    Waits grow exponentially with full jitter, so restarted workers do not
    stampede a recovering InfluxDB.
    """
    delay_s = 0.5
    while True:
        try:
            action()
            stats.influx_ok = True
            return True
        except InfluxUnavailableError as exc:
            log.warning("influx unavailable action=%s retry_in_s=%.1f error=%s", what, delay_s, exc)
        except InfluxAuthError as exc:
            log.error("INFLUXDB REFUSES OUR CREDENTIALS action=%s: %s; holding data", what, exc)
        stats.influx_ok = False
        stats.write_retries += 1
        if give_up.wait(delay_s * random.uniform(0.5, 1.0)):  # noqa: S311 - jitter, not crypto
            return False
        delay_s = min(delay_s * 2, settings.ingest.write_retry_max_s)
