"""Quality flags for every raw point, as the bitmask field ``qc_flags``, computed over batches.

A flag never removes a raw value. Aggregates leave flagged values out, field
by field: spikes and flatlines the field they hit, duplicates the whole
reading, the humidity artefact the PM fields only (a humid reading's NO2 is
kept). Out-of-order readings stay in: windows decide about late data.

``QualityChecker`` keeps, per device, the little the checks need (its recent
values, its last value and how long it has repeated, its recent timestamps,
its latest event time) in arrays indexed by a device slot; each batch is
judged with group-wise numpy in arrival order. The only Python loop is over
the batch's distinct devices, to find their slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from smartplace.ingest.decode.columns import FloatArray, IntArray, ReadingColumns
from smartplace.ingest.decode.flags import QcFlag
from smartplace.ingest.decode.slots import DeviceSlots


@dataclass(frozen=True)
class QualityRules:
    spike_z: float = 6.0
    """Robust z-score above which a value is a spike."""
    spike_history: int = 12
    """Recent values per device and field that the median and MAD are taken over. Short, so the
    median follows a diurnal ramp (NO2's rush hour) instead of calling it a spike."""
    mad_floor_fraction: float = 0.15
    """The MAD is taken as at least this share of the median: a calm spell must not shrink the
    yardstick until ordinary variation looks like a spike."""
    mad_floor: float = 1.0
    """...and at least this many units (ug/m3)."""
    spike_min_history: int = 10
    """No spike verdict before a device has this many values."""
    flatline_run: int = 6
    """This many identical values running make a flatline (DOMAIN.md: >= 6)."""
    humidity_soft_pct: float = 75.0
    humidity_hard_pct: float = 85.0
    seen_timestamps: int = 64
    """Recent timestamps per device remembered to find duplicates."""


OPTICAL_PM_FIELDS = ("pm1_ugm3", "pm25_ugm3", "pm10_ugm3")
_MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution is 0.6745 sigma
_NEVER = np.iinfo(np.int64).min


def humidity_flags(humidity: FloatArray, rules: QualityRules) -> npt.NDArray[np.uint32]:
    flags = np.zeros(len(humidity), dtype=np.uint32)
    flags[humidity >= rules.humidity_soft_pct] |= np.uint32(QcFlag.HUMIDITY_HIGH)
    flags[humidity >= rules.humidity_hard_pct] |= np.uint32(QcFlag.HUMIDITY_ARTEFACT)
    return flags


def nan_median(values: FloatArray) -> FloatArray:
    """np.nanmedian over the last axis, for short rows: sort, then pick the middle of the
    measured values. numpy's own goes through masked arrays for rows this short, and took
    half of ingest's time on batched payloads (py-spy); this gives the same numbers."""
    ordered = np.sort(values, axis=-1)  # NaN sorts last
    measured = (~np.isnan(values)).sum(axis=-1)
    low = np.maximum((measured - 1) // 2, 0)[..., None]
    high = (measured // 2)[..., None]
    middle = (
        np.take_along_axis(ordered, low, axis=-1)[..., 0]
        + np.take_along_axis(ordered, np.minimum(high, values.shape[-1] - 1), axis=-1)[..., 0]
    ) / 2
    median: FloatArray = np.where(measured > 0, middle, np.nan)
    return median


def robust_z(values: FloatArray, median: FloatArray, mad: FloatArray) -> FloatArray:
    """|value - median| / (1.4826 * MAD); 0 where value equals a flat history, inf where it leaves it."""
    deviation = np.abs(values - median)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = deviation / (_MAD_TO_SIGMA * mad)
    z = np.where((mad == 0) & (deviation == 0), 0.0, z)
    return np.asarray(z, dtype=np.float64)


def group_starts(sorted_keys: IntArray) -> npt.NDArray[np.bool_]:
    starts = np.ones(len(sorted_keys), dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return starts


def running_max_before(
    values: IntArray, starts: npt.NDArray[np.bool_], carried: IntArray
) -> IntArray:
    """For each position: the max of ``carried`` (per group) and the group's earlier values."""
    ordered, ranks = np.unique(np.concatenate([values, carried]), return_inverse=True)
    value_rank, carried_rank = ranks[: len(values)], ranks[len(values) :]
    group = np.cumsum(starts) - 1
    span = len(ranks) + 1
    # Offsetting each group above the last keeps one accumulate from leaking across groups.
    shifted = np.empty(len(values), dtype=np.int64)
    shifted[1:] = value_rank[:-1]
    shifted[starts] = carried_rank
    best = np.maximum.accumulate(shifted + group * span) - group * span
    return np.asarray(ordered[best], dtype=np.int64)


@dataclass
class QualityReport:
    flags: npt.NDArray[np.uint32]
    """Per reading: every flag that applies."""
    excluded: npt.NDArray[np.bool_]
    """Per reading and field: leave out of aggregates."""


class QualityChecker:
    """Flags batches of one measurement's readings; remembers per device what the checks need."""

    def __init__(
        self,
        fields: tuple[str, ...],
        checked_fields: tuple[str, ...] = (),
        rules: QualityRules | None = None,
    ) -> None:
        """``checked_fields``: the ones spike and flatline checks watch (the kind's spec)."""
        self.rules = rules or QualityRules()
        self.fields = fields
        self.checked_fields = checked_fields
        self.checked = [i for i, name in enumerate(fields) if name in checked_fields]
        self._slots = DeviceSlots()
        capacity = 64
        n_checked, history = len(self.checked), self.rules.spike_history
        self._latest = np.full(capacity, _NEVER, dtype=np.int64)
        self._seen = np.full((capacity, self.rules.seen_timestamps), _NEVER, dtype=np.int64)
        self._seen_next = np.zeros(capacity, dtype=np.int64)
        self._last_value = np.full((capacity, n_checked), np.nan)
        self._run = np.zeros((capacity, n_checked), dtype=np.int64)
        self._recent = np.full((capacity, n_checked, history), np.nan)
        self._recent_next = np.zeros((capacity, n_checked), dtype=np.int64)

    def check(self, columns: ReadingColumns) -> QualityReport:
        n = len(columns)
        flags = columns.qc_flags.copy()
        excluded = np.zeros(columns.values.shape, dtype=bool)
        index = {name: i for i, name in enumerate(columns.fields)}
        if "humidity_pct" in index:
            humid = humidity_flags(columns.field("humidity_pct"), self.rules)
            flags |= humid
            artefact = (humid & np.uint32(QcFlag.HUMIDITY_ARTEFACT)) != 0
            for name in OPTICAL_PM_FIELDS:
                if name in index:
                    excluded[artefact, index[name]] = True
        if "pm25_ugm3" in index and "pm10_ugm3" in index:
            flags[columns.field("pm25_ugm3") > columns.field("pm10_ugm3")] |= np.uint32(
                QcFlag.PM25_ABOVE_PM10
            )
        if n == 0:
            return QualityReport(flags, excluded)

        slots = self._slots_for(columns.device_ids)
        order = np.argsort(slots, kind="stable")  # by device, arrival order kept within each
        sorted_slots = slots[order]
        starts = group_starts(sorted_slots)
        self._check_times(columns.ts_ns[order], sorted_slots, starts, order, flags, excluded)
        if self.checked:
            self._check_values(
                columns.values[order][:, self.checked], sorted_slots, starts, order, flags, excluded
            )
        return QualityReport(flags, excluded)

    # -- time checks: duplicates and out-of-order --------------------------------------

    def _check_times(
        self,
        ts: IntArray,
        slots: IntArray,
        starts: npt.NDArray[np.bool_],
        order: npt.NDArray[np.intp],
        flags: npt.NDArray[np.uint32],
        excluded: npt.NDArray[np.bool_],
    ) -> None:
        # Each device's times rising through the batch (a stream in order, the usual case):
        # then only a device's latest time before the batch can be later than a reading, and
        # the readings are in (device, time) order already.
        rising = bool(((ts[1:] >= ts[:-1]) | starts[1:]).all())
        if rising:
            out_of_order = ts < self._latest[slots]
            by_pair = np.arange(len(ts))
        else:
            out_of_order = ts < running_max_before(ts, starts, self._latest[slots[starts]])
            by_pair = np.lexsort((ts, slots))
        flags[order[out_of_order]] |= np.uint32(QcFlag.OUT_OF_ORDER)

        # A (device, time) seen earlier in the batch: neighbours once sorted by both (stably,
        # so the first of equals is the one kept); np.unique(axis=0) took 6x as long.
        pair_slots, pair_ts = slots[by_pair], ts[by_pair]
        repeated = np.zeros(len(ts), dtype=bool)
        repeated[by_pair[1:]] = (pair_slots[1:] == pair_slots[:-1]) & (pair_ts[1:] == pair_ts[:-1])
        duplicate = repeated | self._seen_before(ts, slots, starts)
        flags[order[duplicate]] |= np.uint32(QcFlag.DUPLICATE)
        excluded[order[duplicate], :] = True

        np.maximum.at(self._latest, slots, ts)
        position = (self._seen_next[slots] + _rank_in_group(starts)) % self.rules.seen_timestamps
        self._seen[slots, position] = ts
        np.add.at(self._seen_next, slots, 1)

    def _seen_before(
        self, ts: IntArray, slots: IntArray, starts: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.bool_]:
        """Whether each reading's time is among its device's remembered ones.

        Only a time no later than the latest remembered can be: in a stream in order none
        is, and the comparison with every remembered time is left for the few that are."""
        group = np.cumsum(starts) - 1
        latest_seen = self._seen[slots[starts]].max(axis=1)[group]
        maybe = np.flatnonzero(ts <= latest_seen)
        seen = np.zeros(len(ts), dtype=bool)
        seen[maybe] = (self._seen[slots[maybe]] == ts[maybe, None]).any(axis=1)
        return seen

    # -- value checks: spikes and flatlines ------------------------------------------

    def _check_values(
        self,
        values: FloatArray,
        slots: IntArray,
        starts: npt.NDArray[np.bool_],
        order: npt.NDArray[np.intp],
        flags: npt.NDArray[np.uint32],
        excluded: npt.NDArray[np.bool_],
    ) -> None:
        rules = self.rules
        columns = np.asarray(self.checked)
        # Spikes, against each device's recent history as it stood before this batch: worked
        # out once per device (a row per group), then spread to the device's readings.
        group = np.cumsum(starts) - 1
        history = self._recent[slots[starts]]
        with np.errstate(all="ignore"):  # a new device has no history yet
            device_median = nan_median(history)
            device_mad = nan_median(np.abs(history - device_median[:, :, None]))
        known = ((~np.isnan(history)).sum(axis=2) >= rules.spike_min_history)[group]
        median, mad = device_median[group], device_mad[group]
        floored = np.fmax(mad, np.fmax(rules.mad_floor_fraction * np.abs(median), rules.mad_floor))
        spike = known & ~np.isnan(values) & (robust_z(values, median, floored) > rules.spike_z)
        spiky_rows = spike.any(axis=1)
        flags[order[spiky_rows]] |= np.uint32(QcFlag.SPIKE)
        for k, column in enumerate(columns.tolist()):
            excluded[order[spike[:, k]], column] = True

        # Flatlines: the run of identical values each reading ends, carried over from earlier batches.
        previous = np.empty_like(values)
        previous[1:] = values[:-1]
        previous[starts] = self._last_value[slots[starts]]
        same = values == previous  # NaN is never equal: a gap ends a run
        position = np.arange(len(values))
        run_start = np.maximum.accumulate(
            np.where(~same | starts[:, None], position[:, None], 0), axis=0
        )
        carried = np.where(
            same[starts], self._run[slots[starts]], 0
        )  # continuing a run from before
        from_start = run_start == np.flatnonzero(starts)[group][:, None]
        run = position[:, None] - run_start + 1 + np.where(from_start, carried[group], 0)
        flat = (run >= rules.flatline_run) & ~np.isnan(values)
        flags[order[flat.any(axis=1)]] |= np.uint32(QcFlag.FLATLINE)
        for k, column in enumerate(columns.tolist()):
            excluded[order[flat[:, k]], column] = True

        # Remember: last value and run per device, and recent values that were not spikes.
        last = np.r_[np.flatnonzero(starts)[1:] - 1, len(values) - 1]
        self._last_value[slots[last]] = values[last]
        self._run[slots[last]] = run[last]
        keep = ~spike & ~np.isnan(values)
        for k in range(len(columns)):
            rank = _rank_in_group(starts, keep[:, k])
            kept = keep[:, k]
            slot = slots[kept]
            position_k = (self._recent_next[slot, k] + rank[kept]) % rules.spike_history
            self._recent[slot, k, position_k] = values[kept, k]
            np.add.at(self._recent_next[:, k], slot, 1)

    # -- device slots ------------------------------------------------------------------

    def _slots_for(self, device_ids: npt.NDArray[np.str_]) -> IntArray:
        slots = self._slots.of(device_ids)
        while len(self._slots) > len(self._latest):
            self._grow()
        return slots

    def _grow(self) -> None:
        def doubled(array: npt.NDArray[Any], fill: object) -> Any:
            extra = np.full(array.shape, fill, dtype=array.dtype)
            return np.concatenate([array, extra])

        self._latest = doubled(self._latest, _NEVER)
        self._seen = doubled(self._seen, _NEVER)
        self._seen_next = doubled(self._seen_next, 0)
        self._last_value = doubled(self._last_value, np.nan)
        self._run = doubled(self._run, 0)
        self._recent = doubled(self._recent, np.nan)
        self._recent_next = doubled(self._recent_next, 0)


def _rank_in_group(
    starts: npt.NDArray[np.bool_], selected: npt.NDArray[np.bool_] | None = None
) -> IntArray:
    """0, 1, 2... for each (selected) position within its group: where it lands in a ring buffer."""
    chosen = np.ones(len(starts), dtype=np.int64) if selected is None else selected.astype(np.int64)
    before = np.cumsum(chosen) - chosen
    group_base = before[starts]
    group = np.cumsum(starts) - 1
    return np.asarray(before - group_base[group], dtype=np.int64)


def count_flags(flags: npt.NDArray[np.uint32]) -> dict[str, int]:
    """How many readings carry each flag, by the flag's name in lower case."""
    counts = {}
    for flag in QcFlag:
        count = int(np.count_nonzero(flags & np.uint32(flag)))
        if count:
            counts[str(flag.name).lower()] = count
    return counts
