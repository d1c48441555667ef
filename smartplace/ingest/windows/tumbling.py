"""Event-time tumbling windows per device, computed with numpy over micro-batches.

Terms, as a stream-processing engineer uses them:
- a window is [window_start, window_start + length); a reading falls in the
  window containing its event time (its ``ts``), not its arrival time;
- a device's watermark is the latest event time it has sent;
- a window stays open until the device's watermark passes its end plus the
  grace period; a reading for a closed window is late beyond grace: it is
  stored raw, leaves the aggregate as it is, and is counted;
- a window is emitted once the device's watermark passes its end, and again
  whenever a late reading within grace changes it; a device that has gone
  quiet (nothing arrived for the grace period) has its windows emitted and
  closed when the wall clock passes their end plus grace; ``flush`` emits
  whatever is open (graceful stop). The point's time is the window start,
  so re-emission and replay overwrite the same point: writes are idempotent.

``partial_aggregates`` is the pure core; ``WindowAggregator`` only keeps the
running sums, minima, maxima and counts of open windows between batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from smartplace.ingest.decode.columns import FloatArray, IntArray, ReadingColumns
from smartplace.ingest.decode.slots import DeviceSlots
from smartplace.ingest.windows.sketch import BUCKETS, bucket_of, quantile
from smartplace.schemas.reading import NS_PER_S
from smartplace.storage import aggregate_measurement

_NEVER = np.iinfo(np.int64).min
_LATEST = np.iinfo(np.int64).max


def window_starts(ts_ns: IntArray, length_ns: int) -> IntArray:
    """The start of the window each event time falls in (aligned to the epoch, UTC)."""
    starts: IntArray = ts_ns - np.remainder(ts_ns, length_ns)
    return starts


@dataclass(frozen=True, slots=True)
class WindowPartials:
    """Sums, minima, maxima and counts of non-NaN values per (device, window) group."""

    device_ids: npt.NDArray[Any]
    """Each group's device: its id, or whatever key the caller grouped by (an int slot, say)."""
    window_start_ns: IntArray
    sums: FloatArray
    mins: FloatArray
    maxs: FloatArray
    counts: IntArray
    first_ts: IntArray
    """Per field: the time of the earliest measured value (_LATEST where none)."""
    first: FloatArray
    last_ts: IntArray
    """Per field: the time of the latest measured value (_NEVER where none)."""
    last: FloatArray
    group_of: IntArray
    """For each input reading, its group's index."""

    def __len__(self) -> int:
        return len(self.window_start_ns)


def partial_aggregates(
    device_ids: npt.NDArray[Any],
    ts_ns: IntArray,
    values: FloatArray,
    length_ns: int,
    track_order: bool = True,
) -> WindowPartials:
    """Group readings by (device, window) and reduce each field, ignoring NaN (not measured).

    ``track_order`` also finds each field's first and last value in event time
    (bins need them; the others skip the cost).
    """
    n_fields = values.shape[1]
    if len(ts_ns) == 0:
        empty, no_ts = np.empty((0, n_fields)), np.empty((0, n_fields), np.int64)
        return WindowPartials(
            device_ids[:0],
            ts_ns[:0],
            empty,
            empty,
            empty,
            no_ts,
            no_ts,
            empty,
            no_ts,
            empty,
            ts_ns[:0],
        )
    starts = window_starts(ts_ns, length_ns)
    keys = (ts_ns, starts, device_ids) if track_order else (starts, device_ids)
    order = np.lexsort(keys)  # by group (and by event time within it, when tracking order)
    devices, starts, values, ts = device_ids[order], starts[order], values[order], ts_ns[order]
    new_group = np.ones(len(starts), dtype=bool)
    new_group[1:] = (devices[1:] != devices[:-1]) | (starts[1:] != starts[:-1])
    first = np.flatnonzero(new_group)
    group_of = np.empty(len(order), dtype=np.int64)
    group_of[order] = np.cumsum(new_group) - 1
    measured = ~np.isnan(values)
    sums = np.add.reduceat(np.where(measured, values, 0.0), first, axis=0)
    mins = np.minimum.reduceat(np.where(measured, values, np.inf), first, axis=0)
    maxs = np.maximum.reduceat(np.where(measured, values, -np.inf), first, axis=0)
    counts = np.add.reduceat(measured.astype(np.int64), first, axis=0)
    if not track_order:
        none_ts, none = np.zeros(sums.shape, np.int64), np.full(sums.shape, np.nan)
        return WindowPartials(
            devices[first],
            starts[first],
            sums,
            mins,
            maxs,
            counts,
            none_ts + _LATEST,
            none,
            none_ts + _NEVER,
            none,
            group_of,
        )
    position = np.arange(len(ts))[:, None]
    earliest = np.minimum.reduceat(np.where(measured, position, len(ts)), first, axis=0)
    latest = np.maximum.reduceat(np.where(measured, position, -1), first, axis=0)
    has = latest >= 0
    fields = np.arange(n_fields)[None, :]
    return WindowPartials(
        device_ids=devices[first],
        window_start_ns=starts[first],
        sums=sums,
        mins=mins,
        maxs=maxs,
        counts=counts,
        first_ts=np.where(has, ts[np.where(has, earliest, 0)], _LATEST),
        first=np.where(has, values[np.where(has, earliest, 0), fields], np.nan),
        last_ts=np.where(has, ts[np.where(has, latest, 0)], _NEVER),
        last=np.where(has, values[np.where(has, latest, 0), fields], np.nan),
        group_of=group_of,
    )


def count_into(
    sketch: npt.NDArray[np.int32],
    rows: IntArray,
    group: IntArray,
    field: IntArray,
    bucket: IntArray,
) -> None:
    """Add one to ``sketch[rows[group], field, bucket]`` per value; ``rows`` distinct.

    np.add.at with three indices costs a few hundred ns a value. Counting by group with one
    bincount is ~20x cheaper, as long as the groups' cells are few next to the values."""
    cells = len(rows) * sketch.shape[1] * sketch.shape[2]
    if cells > 16 * len(group) + 4096:  # groups too many for their values: count one by one
        np.add.at(sketch, (rows[group], field, bucket), 1)
        return
    flat = (group * sketch.shape[1] + field) * sketch.shape[2] + bucket
    sketch[rows] += np.bincount(flat, minlength=cells).reshape(-1, *sketch.shape[1:])


@dataclass(frozen=True, slots=True)
class WindowAggregates:
    """Full aggregates of the windows a batch touched, ready to write."""

    measurement: str
    fields: tuple[str, ...]
    device_ids: npt.NDArray[np.str_]
    window_start_ns: IntArray
    mean: FloatArray
    min: FloatArray
    max: FloatArray
    count: IntArray
    late: npt.NDArray[np.bool_]
    """Per reading of the batch added: whether its window had already closed (late beyond
    grace). Empty when the wall clock or a flush made the windows due."""
    sum: FloatArray
    first: FloatArray
    """The earliest measured value in the window, per field."""
    first_ts: IntArray
    last: FloatArray
    """The latest measured value in the window, per field."""
    last_ts: IntArray
    kind: str
    p95: FloatArray
    """Per field: the 95th percentile (nearest rank, within the sketch's 2 %), NaN where not kept."""

    def __len__(self) -> int:
        return len(self.window_start_ns)

    @property
    def late_beyond_grace(self) -> int:
        return int(self.late.sum())


_NO_READINGS = np.zeros(0, dtype=bool)


class WindowAggregator:
    """Open tumbling windows of one length for one kind of reading.

    State lives in arrays: per device slot its watermark, per state row its
    running sums/minima/maxima/counts, its device slot and window start.
    Closing windows is one numpy mask per batch; the only Python loops are
    over the batch's distinct devices and (device, window) groups.
    """

    def __init__(
        self,
        kind: str,
        fields: tuple[str, ...],
        length_s: int,
        grace_s: float,
        track_order: bool = False,
        quantile_fields: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.track_order = track_order
        """Keep each field's first and last value in event time (bins: last fill, rate of rise)."""
        self.measurement = aggregate_measurement(kind, length_s)
        self.fields = fields
        self.length_ns = length_s * NS_PER_S
        self.grace_ns = int(grace_s * NS_PER_S)
        self._slots = DeviceSlots()
        self._watermark = np.full(64, _NEVER, dtype=np.int64)
        self._closed_through = np.full(64, _NEVER, dtype=np.int64)
        """Per device slot, the latest end of a window closed: one ending there or before was
        written for good, whatever grace a later run is given."""
        self._open: dict[tuple[int, int], int] = {}  # (device slot, window start) -> state row
        capacity, n_fields = 1024, len(fields)
        self._sums = np.zeros((capacity, n_fields))
        self._mins = np.full((capacity, n_fields), np.inf)
        self._maxs = np.full((capacity, n_fields), -np.inf)
        self._counts = np.zeros((capacity, n_fields), np.int64)
        self._first_ts = np.full((capacity, n_fields), _LATEST, np.int64)
        self._first = np.full((capacity, n_fields), np.nan)
        self._last_ts = np.full((capacity, n_fields), _NEVER, np.int64)
        self._last = np.full((capacity, n_fields), np.nan)
        self._quantiled = [fields.index(name) for name in quantile_fields if name in fields]
        self._sketch = np.zeros((capacity, len(self._quantiled), BUCKETS), dtype=np.int32)
        self._row_slot = np.full(capacity, -1, dtype=np.int64)
        self._row_start = np.zeros(capacity, dtype=np.int64)
        self._row_dirty = np.zeros(capacity, dtype=bool)  # changed since it was last emitted
        self._last_arrival = np.full(64, _NEVER, dtype=np.int64)
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        self.rebuilding = False
        """Set while the spool's backlog is replayed before these windows are rebuilt from
        InfluxDB (``rebuild.py``): they emit nothing and are not saved, and are then replaced."""
        self.replayed_from: dict[str, int] = {}
        """While rebuilding: each device's earliest event time seen, so the rebuild covers
        every window the replay touched (their emissions were held back)."""

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def add(
        self, columns: ReadingColumns, include: npt.NDArray[np.bool_], now_ns: int | None = None
    ) -> WindowAggregates:
        """Merge a batch into its windows and return the windows due for writing.

        ``include`` masks readings that quality flags keep out; ``now_ns`` is
        the batch's arrival time (the wall clock that closes quiet devices' windows).
        """
        if self.rebuilding and len(columns):
            self._remember_replayed(columns)
        slots = self._slots_for(columns.device_ids)
        starts = window_starts(columns.ts_ns, self.length_ns)
        ends = starts + self.length_ns
        late = (ends + self.grace_ns <= self._watermark[slots]) | (
            ends <= self._closed_through[slots]
        )
        use = include & ~late
        # Grouped by device slot: integers sort faster than ids, and the slots are what state needs.
        partials = partial_aggregates(
            slots[use],
            columns.ts_ns[use],
            columns.values[use],
            self.length_ns,
            self.track_order,
        )
        rows = self._rows_for(partials.device_ids, partials.window_start_ns)
        self._sums[rows] += partials.sums
        self._mins[rows] = np.minimum(self._mins[rows], partials.mins)
        self._maxs[rows] = np.maximum(self._maxs[rows], partials.maxs)
        self._counts[rows] += partials.counts
        earlier = partials.first_ts < self._first_ts[rows]
        self._first_ts[rows] = np.where(earlier, partials.first_ts, self._first_ts[rows])
        self._first[rows] = np.where(earlier, partials.first, self._first[rows])
        later = partials.last_ts >= self._last_ts[rows]
        self._last_ts[rows] = np.where(later, partials.last_ts, self._last_ts[rows])
        self._last[rows] = np.where(later, partials.last, self._last[rows])
        if self._quantiled:
            kept = columns.values[use][:, self._quantiled]
            reading, field = np.nonzero(~np.isnan(kept))
            bucket = bucket_of(kept[reading, field])
            count_into(self._sketch, rows, partials.group_of[reading], field, bucket)
        self._row_dirty[rows] = True
        np.maximum.at(self._watermark, slots, columns.ts_ns)
        if now_ns is not None:
            self._last_arrival[slots] = now_ns  # one value for all: repeats need no unique
        return self._emit(now_ns, late)

    def _remember_replayed(self, columns: ReadingColumns) -> None:
        devices, index = np.unique(columns.device_ids, return_inverse=True)
        earliest = np.full(len(devices), _LATEST, dtype=np.int64)
        np.minimum.at(earliest, index, columns.ts_ns)
        for device, ts in zip(devices.tolist(), earliest.tolist(), strict=True):
            self.replayed_from[device] = min(self.replayed_from.get(device, ts), ts)

    def tick(self, now_ns: int) -> WindowAggregates:
        """What the wall clock alone makes due: windows of devices that have gone quiet."""
        return self._emit(now_ns, _NO_READINGS)

    def flush(self) -> WindowAggregates:
        """Every changed window, complete or not (a graceful stop); they stay open for more."""
        due = np.flatnonzero((self._row_slot >= 0) & self._row_dirty)
        return self._write(due, _NO_READINGS)

    def _emit(self, now_ns: int | None, late: npt.NDArray[np.bool_]) -> WindowAggregates:
        in_use = self._row_slot >= 0
        slot = np.where(in_use, self._row_slot, 0)
        end = self._row_start + self.length_ns
        watermark = self._watermark[slot]
        closes = end + self.grace_ns <= watermark
        if now_ns is not None:
            quiet = self._last_arrival[slot] + self.grace_ns <= now_ns
            closes |= quiet & (end + self.grace_ns <= now_ns)
        complete = in_use & ((end <= watermark) | closes)
        emitted = self._write(np.flatnonzero(complete & self._row_dirty), late)
        closing = np.flatnonzero(in_use & closes)
        # A window closed stays closed: a reading for it from now on is late beyond grace,
        # whatever grace a later run has (the watermark stays the device's own event time).
        np.maximum.at(self._closed_through, self._row_slot[closing], end[closing])
        self._close(closing)
        return emitted

    def _write(self, rows: IntArray, late: npt.NDArray[np.bool_]) -> WindowAggregates:
        if self.rebuilding:
            rows = rows[:0]  # partial until rebuilt: nothing of them may be written
        self._row_dirty[rows] = False
        names = self._slots.names
        device_ids = np.array(
            [names[slot] for slot in self._row_slot[rows].tolist()], dtype=np.str_
        )
        return self._aggregates(device_ids, self._row_start[rows], rows, late)

    def _slots_for(self, device_ids: npt.NDArray[np.str_]) -> IntArray:
        slots = self._slots.of(device_ids)
        while len(self._slots) > len(self._watermark):
            grown = np.full(len(self._watermark), _NEVER)
            self._watermark = np.concatenate([self._watermark, grown])
            self._closed_through = np.concatenate([self._closed_through, grown])
            self._last_arrival = np.concatenate([self._last_arrival, grown])
        return slots

    def _rows_for(self, slots: IntArray, starts: IntArray) -> IntArray:
        """The state row of each (device, window), opening windows not seen before."""
        rows = np.empty(len(slots), dtype=np.int64)
        for i, key in enumerate(zip(slots.tolist(), starts.tolist(), strict=True)):
            row = self._open.get(key)
            if row is None:
                if not self._free:
                    self._grow()
                row = self._open[key] = self._free.pop()
                self._row_slot[row], self._row_start[row] = key
            rows[i] = row
        return rows

    def _grow(self) -> None:
        old = len(self._sums)
        n_fields = len(self.fields)
        self._sums = np.vstack([self._sums, np.zeros((old, n_fields))])
        self._mins = np.vstack([self._mins, np.full((old, n_fields), np.inf)])
        self._maxs = np.vstack([self._maxs, np.full((old, n_fields), -np.inf)])
        self._counts = np.vstack([self._counts, np.zeros((old, n_fields), np.int64)])
        self._first_ts = np.vstack([self._first_ts, np.full((old, n_fields), _LATEST, np.int64)])
        self._first = np.vstack([self._first, np.full((old, n_fields), np.nan)])
        self._last_ts = np.vstack([self._last_ts, np.full((old, n_fields), _NEVER, np.int64)])
        self._last = np.vstack([self._last, np.full((old, n_fields), np.nan)])
        self._sketch = np.concatenate([self._sketch, np.zeros_like(self._sketch)])
        self._row_slot = np.concatenate([self._row_slot, np.full(old, -1, dtype=np.int64)])
        self._row_start = np.concatenate([self._row_start, np.zeros(old, dtype=np.int64)])
        self._row_dirty = np.concatenate([self._row_dirty, np.zeros(old, dtype=bool)])
        self._free.extend(range(2 * old - 1, old - 1, -1))

    def _close(self, closing: IntArray) -> None:
        """Free closed windows: a reading for one of them from now on is late beyond grace."""
        if not len(closing):
            return
        for slot, start in zip(
            self._row_slot[closing].tolist(), self._row_start[closing].tolist(), strict=True
        ):
            del self._open[slot, start]
        self._sums[closing] = 0.0
        self._mins[closing] = np.inf
        self._maxs[closing] = -np.inf
        self._counts[closing] = 0
        self._first_ts[closing] = _LATEST
        self._first[closing] = np.nan
        self._last_ts[closing] = _NEVER
        self._last[closing] = np.nan
        self._sketch[closing] = 0
        self._row_slot[closing] = -1
        self._row_dirty[closing] = False
        self._free.extend(closing.tolist())

    def _aggregates(
        self,
        device_ids: npt.NDArray[np.str_],
        starts: IntArray,
        rows: IntArray,
        late: npt.NDArray[np.bool_],
    ) -> WindowAggregates:
        counts = self._counts[rows]
        measured = counts > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(measured, self._sums[rows] / counts, np.nan)
        return WindowAggregates(
            measurement=self.measurement,
            fields=self.fields,
            device_ids=device_ids,
            window_start_ns=starts,
            mean=mean,
            min=np.where(measured, self._mins[rows], np.nan),
            max=np.where(measured, self._maxs[rows], np.nan),
            count=counts,
            late=late,
            sum=np.where(measured, self._sums[rows], np.nan),
            first=self._first[rows],
            first_ts=self._first_ts[rows],
            last=self._last[rows],
            last_ts=self._last_ts[rows],
            kind=self.kind,
            p95=self._p95(rows, measured),
        )

    def _p95(self, rows: IntArray, measured: npt.NDArray[np.bool_]) -> FloatArray:
        p95 = np.full((len(rows), len(self.fields)), np.nan)
        if self._quantiled and len(rows):
            k = self._quantiled
            low = np.where(measured[:, k], self._mins[rows][:, k], np.nan)
            high = np.where(measured[:, k], self._maxs[rows][:, k], np.nan)
            p95[:, k] = quantile(self._sketch[rows], 0.95, low, high)
        return p95
