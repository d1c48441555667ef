"""The pure core of ingest: a micro-batch of messages in, points out (decode -> check ->
windows -> write's formatting).

Holds the open windows between batches and nothing else; no sockets, no
clocks, no files. The writer thread feeds it and writes what it returns, then
takes the delivery ledger's totals (``ledger_points``) once the batch before
has been settled, so a refusal always corrects the totals written after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from smartplace.config import Settings
from smartplace.devices.directory import DeviceDirectory
from smartplace.ingest.check.quality import QualityChecker, count_flags
from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.decode.flags import QcFlag
from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.ledger import DeliveryLedger
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.redelivery import RecentMessages
from smartplace.ingest.windows.bins import CollectionDetector
from smartplace.ingest.windows.site_daqi import SiteDaqi
from smartplace.ingest.windows.tumbling import WindowAggregates, WindowAggregator
from smartplace.ingest.write.aggregates import window_lines
from smartplace.ingest.write.points import (
    Points,
    device_info_lines,
    raw_lines,
    reject_lines,
)
from smartplace.lineprotocol import NS_PER_UNIT, Precision
from smartplace.schemas.kinds import KINDS, QUANTILE_MIN_WINDOW_S, KindSpec
from smartplace.schemas.reasons import Reject
from smartplace.schemas.ttn import TtnState
from smartplace.storage import DELIVERY_LEDGER, DEVICE_INFO, REJECTS, SITE_DAQI


@dataclass(slots=True)
class PipelineOutput:
    raw: Points = field(default_factory=Points)
    """Raw readings, rejects and registry updates, for the raw retention policy."""
    agg: Points = field(default_factory=Points)
    """Window aggregates, for the agg retention policy."""
    accepted: int = 0
    rejects: list[Reject] = field(default_factory=list)
    late_beyond_grace: int = 0
    flag_counts: Counter[str] = field(default_factory=Counter)
    """Readings per quality flag in this batch."""
    redelivered: int = 0
    """Messages dropped as the broker's redeliveries of ones already processed."""
    lorawan_frames: Counter[str] = field(default_factory=Counter)
    """LoRaWAN uplinks missed (frame counter gaps) and backfilled in this batch."""


class Pipeline:
    def __init__(self, settings: Settings) -> None:
        self.limits = DecodeLimits.from_settings(settings.mqtt.topic_prefix, settings.ingest)
        self.precision: Precision = settings.influx.precision
        self.windows_s = settings.ingest.windows_s
        self.grace_s = settings.ingest.window_grace_s
        self.shard = (settings.ingest.workers, settings.ingest.worker_index)
        """(workers, this worker's index): whose devices' windows these are."""
        self._aggregators: dict[str, list[WindowAggregator]] = {}
        self._quality: dict[str, QualityChecker] = {}
        self._collections = CollectionDetector()
        self._daqi = SiteDaqi(self.precision)
        self.directory = DeviceDirectory()
        self.ttn = TtnState(
            profiles_by_application=settings.ingest.ttn_profiles, devices=self.directory.devices
        )
        self._last_reject_ns = 0
        self._reject_ordinal = 0
        self._recent = RecentMessages()
        self.ledger = DeliveryLedger()
        self._latest_arrival_ns = 0

    def process(
        self, messages: Sequence[RawMessage], known_rejects: Sequence[Reject] = ()
    ) -> PipelineOutput:
        """A batch in, its lines out. ``known_rejects``: rejects of the batch's messages that
        are settled already (ones that made the pipeline fail before), stored with the rest."""
        now_ns = max((m.received_ns for m in messages), default=None)
        messages, redelivered = self._recent.drop_redelivered(messages)
        decoded = decode_messages(messages, self.limits, self.ttn, self.directory)
        if known_rejects:
            decoded.rejects = [*decoded.rejects, *known_rejects]
        out = PipelineOutput(
            accepted=decoded.accepted, rejects=decoded.rejects, redelivered=redelivered
        )
        for columns in decoded.columns:
            spec = _spec_of(columns)
            if spec is not None and spec.collections:
                columns = self._collections.mark(columns)  # a column like any other from here on
            checker = self._quality.get(columns.measurement)
            if checker is None:
                checked = spec.checked_fields if spec is not None else ()
                checker = QualityChecker(columns.fields, checked)
                self._quality[columns.measurement] = checker
            report = checker.check(columns)
            columns = replace(columns, qc_flags=report.flags)
            out.flag_counts.update(count_flags(report.flags))
            lines = raw_lines(columns, self.precision)
            out.raw.add(
                lines, columns.measurement, columns.kind, columns.device_ids, columns.received_ns
            )
            duplicate = (report.flags & np.uint32(QcFlag.DUPLICATE)) != 0
            if spec is None:  # device status: raw only
                self._ledger_count(columns, duplicate, np.zeros(len(columns), dtype=bool))
                continue
            # Flagged values stay raw but, field by field, out of the aggregates.
            kept = replace(columns, values=np.where(report.excluded, np.nan, columns.values))
            include = np.ones(len(columns), dtype=bool)
            if spec.site_index:
                out.agg.add(self._daqi.add(kept), SITE_DAQI)
            aggregators = self._aggregators_for(spec.name, columns.fields)
            for index, aggregator in enumerate(aggregators):
                aggregates = aggregator.add(kept, include, now_ns)
                self._add_windows(out.agg, aggregates)
                out.late_beyond_grace += aggregates.late_beyond_grace
                if index == 0:
                    # Late for the shortest window means missing from at least one aggregate.
                    self._ledger_count(columns, duplicate, aggregates.late)
        out.raw.add(self.reject_points(decoded.rejects), REJECTS)
        info = device_info_lines(decoded.registry_updates, self.precision)
        out.raw.add(info, DEVICE_INFO)
        self.ledger.count_rejects(decoded.rejects)
        for device, name, count, arrived_ns in self.ttn.take_frame_events():
            self.ledger.count_frames(device, name, count, arrived_ns)
            out.lorawan_frames[name] += count
        if now_ns is not None:
            self._latest_arrival_ns = now_ns
        return out

    def ledger_points(self) -> Points:
        """The delivery ledger's totals changed since the last call, as of the latest batch."""
        points = Points()
        lines = self.ledger.lines(self._latest_arrival_ns, self.precision)
        points.add(lines, DELIVERY_LEDGER)
        return points

    def _add_windows(self, points: Points, aggregates: WindowAggregates) -> None:
        lines = window_lines(aggregates, self.directory.sites, self.precision)
        points.add(lines, aggregates.measurement)

    def _ledger_count(
        self,
        columns: ReadingColumns,
        duplicate: npt.NDArray[np.bool_],
        late: npt.NDArray[np.bool_],
    ) -> None:
        assert columns.received_ns is not None  # decode always sets it
        self.ledger.count_readings(columns.device_ids, columns.received_ns, duplicate, late)

    def tick(self, now_ns: int) -> PipelineOutput:
        """Aggregates the wall clock makes due (quiet devices' windows), with nothing received."""
        out = PipelineOutput()
        for aggregators in self._aggregators.values():
            for aggregator in aggregators:
                self._add_windows(out.agg, aggregator.tick(now_ns))
        return out

    def flush(self) -> PipelineOutput:
        """Every changed window, complete or not: what a graceful stop writes before it goes."""
        out = PipelineOutput()
        out.agg.add(self._daqi.flush(), SITE_DAQI)
        for aggregators in self._aggregators.values():
            for aggregator in aggregators:
                self._add_windows(out.agg, aggregator.flush())
        return out

    def window_lengths(self, kind: str) -> list[int]:
        """The configured window lengths a kind is aggregated over, shortest first."""
        return sorted(s for s in self.windows_s if s >= KINDS[kind].min_window_s)

    def new_aggregator(self, kind: str, fields: tuple[str, ...], length_s: int) -> WindowAggregator:
        """Empty windows of one length, as the current settings make them."""
        spec = KINDS[kind]
        return WindowAggregator(
            kind,
            fields,
            length_s,
            self.grace_s,
            track_order=spec.track_order,
            quantile_fields=spec.quantile_fields if length_s >= QUANTILE_MIN_WINDOW_S else (),
        )

    def _aggregators_for(self, kind: str, fields: tuple[str, ...]) -> list[WindowAggregator]:
        if kind not in self._aggregators:
            self._aggregators[kind] = [
                self.new_aggregator(kind, fields, length_s)
                for length_s in self.window_lengths(kind)
            ]
        return self._aggregators[kind]

    def ledger_refusals(self, readings: Sequence[tuple[str, int | None]]) -> Points:
        """The ledger corrected for readings InfluxDB refused (each named by its device and
        arrival), counted in the hour each arrived (the latest batch's, if not known)."""
        self.ledger.count_refused(
            [(d, self._latest_arrival_ns if at is None else at) for d, at in readings]
        )
        return self.ledger_points()

    def reject_points(self, rejects: Sequence[Reject]) -> list[str]:
        """Line protocol for rejects, found in the pipeline or after it (by the database, say)."""
        times, ordinals = self._reject_places(rejects)
        return reject_lines(rejects, times, ordinals, self.precision)

    def _reject_places(self, rejects: Sequence[Reject]) -> tuple[list[int], list[int]]:
        """Each reject's time, its arrival made strictly increasing, and its place among the
        rejects in the same unit of the write precision (at precision ``s`` distinct
        nanoseconds share a second). Times only rise, so a unit once left never comes back;
        the unit now is the last time's, and the place is saved with it in the state."""
        unit_ns = NS_PER_UNIT[self.precision]
        times, ordinals = [], []
        for reject in rejects:
            unit = self._last_reject_ns // unit_ns
            self._last_reject_ns = max(reject.received_ns, self._last_reject_ns + 1)
            same_unit = self._last_reject_ns // unit_ns == unit
            self._reject_ordinal = self._reject_ordinal + 1 if same_unit else 0
            times.append(self._last_reject_ns)
            ordinals.append(self._reject_ordinal)
        return times, ordinals


def _spec_of(columns: ReadingColumns) -> KindSpec | None:
    """The kind whose readings these are; None for device status, which every kind sends."""
    spec = KINDS.get(columns.kind)
    return spec if spec is not None and spec.model.measurement == columns.measurement else None
