"""The Daily Air Quality Index per site, hourly, from the readings of all the site's monitors.

Each site keeps hourly sums and counts per pollutant for the last 24 hours
(quality-flagged values already left out). When an hour is complete (the
site's latest reading has passed its end, or ``flush``), its index is
worked out as DEFRA does: NO2 from the hour's mean, O3 from the running 8 h
mean, PM2.5 and PM10 from the running 24 h means, each only with 75 % of
its hours present. A late reading re-opens its hour and every later hour
whose running mean it is part of; points are keyed by (site, hour), so
re-emission overwrites.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.windows.daqi import AVERAGING_HOURS, Pollutant, daqi_band, daqi_index
from smartplace.lineprotocol import FieldValue, Precision, format_point
from smartplace.storage import SITE_DAQI

HOUR_NS = 3_600 * 1_000_000_000
DAY_HOURS = 24
MIN_CAPTURE = 0.75
"""Share of a running mean's hours that must hold data (DEFRA's 75 % data capture)."""
FIELD_OF: dict[Pollutant, str] = {
    "pm25": "pm25_ugm3",
    "pm10": "pm10_ugm3",
    "no2": "no2_ugm3",
    "o3": "o3_ugm3",
}


@dataclass
class _Site:
    sums: dict[int, np.ndarray] = field(default_factory=dict)  # hour start -> per pollutant
    counts: dict[int, np.ndarray] = field(default_factory=dict)
    latest_ns: int = np.iinfo(np.int64).min
    due: set[int] = field(default_factory=set)
    """Hours whose index must be (re)computed once complete."""


class SiteDaqi:
    def __init__(self, precision: Precision = "ns") -> None:
        self.precision: Precision = precision
        """The time precision its points are written in."""
        self.pollutants: tuple[Pollutant, ...] = tuple(FIELD_OF)
        self._sites: dict[str, _Site] = {}
        self.rebuilding = False
        """Partial until rebuilt from raw points (no saved state covered it): nothing is
        emitted, and what it holds is replaced by the rebuilt index."""

    def add(self, columns: ReadingColumns) -> list[str]:
        """Take a batch of air quality readings (excluded values already NaN); return the points due."""
        if columns.sites is None:
            return []
        sites = columns.sites
        present = sites != ""
        if not present.any():
            return []
        columns_of = [
            columns.fields.index(FIELD_OF[p]) if FIELD_OF[p] in columns.fields else -1
            for p in self.pollutants
        ]
        values = np.column_stack(
            [
                columns.values[present, k] if k >= 0 else np.full(int(present.sum()), np.nan)
                for k in columns_of
            ]
        )
        hours = columns.ts_ns[present] - np.remainder(columns.ts_ns[present], HOUR_NS)
        site_ids = sites[present]
        order = np.lexsort((hours, site_ids))
        site_ids, hours, values, ts = (
            site_ids[order],
            hours[order],
            values[order],
            columns.ts_ns[present][order],
        )
        new = np.ones(len(order), dtype=bool)
        new[1:] = (site_ids[1:] != site_ids[:-1]) | (hours[1:] != hours[:-1])
        first = np.flatnonzero(new)
        measured = ~np.isnan(values)
        sums = np.add.reduceat(np.where(measured, values, 0.0), first, axis=0)
        counts = np.add.reduceat(measured.astype(np.int64), first, axis=0)
        latest = np.maximum.reduceat(ts, first)
        for site, hour, s, c, t in zip(
            site_ids[first].tolist(),
            hours[first].tolist(),
            sums,
            counts,
            latest.tolist(),
            strict=True,
        ):
            state = self._sites.setdefault(site, _Site())
            state.sums[hour] = state.sums.get(hour, 0.0) + s
            state.counts[hour] = state.counts.get(hour, 0) + c
            state.latest_ns = max(state.latest_ns, t)
            state.due.update(
                hour + h * HOUR_NS for h in range(DAY_HOURS)
            )  # every running mean it is in
        return self._emit(final=False)

    def flush(self) -> list[str]:
        return self._emit(final=True)

    def resume(self, from_ns: int) -> list[str]:
        """Rebuilt: emit again, from the hour holding ``from_ns`` on (the hours before it were
        written whole before the restart); returns the points now due."""
        start = from_ns - from_ns % HOUR_NS
        for state in self._sites.values():
            state.due = {h for h in state.due if h >= start}
        self.rebuilding = False
        return self._emit(final=False)

    def _emit(self, final: bool) -> list[str]:
        if self.rebuilding:
            return []
        lines = []
        for site, state in self._sites.items():
            ready = sorted(
                h
                for h in state.due
                if h in state.counts and (final or h + HOUR_NS <= state.latest_ns)
            )
            for hour in ready:
                fields = self.fields_for(state, hour)
                if fields:
                    lines.append(
                        format_point(SITE_DAQI, {"site": site}, fields, hour, self.precision)
                    )
                state.due.discard(hour)
            horizon = (
                state.latest_ns - 2 * DAY_HOURS * HOUR_NS
            )  # keep what a running mean may still need
            for hour in [h for h in state.counts if h < horizon]:
                del state.sums[hour], state.counts[hour]
            state.due = {h for h in state.due if h >= horizon}
        return lines

    def fields_for(self, state: _Site, hour: int) -> dict[str, FieldValue]:
        fields: dict[str, FieldValue] = {}
        indices: dict[Pollutant, int] = {}
        for k, pollutant in enumerate(self.pollutants):
            span = int(AVERAGING_HOURS[pollutant])
            window = [hour - h * HOUR_NS for h in range(span)]
            with_data = [h for h in window if h in state.counts and state.counts[h][k] > 0]
            if len(with_data) < max(1, int(np.ceil(MIN_CAPTURE * span))):
                continue
            # The mean of hourly means, as DEFRA's running means are taken.
            mean = float(np.mean([state.sums[h][k] / state.counts[h][k] for h in with_data]))
            index = int(daqi_index(pollutant, np.array([mean]))[0])
            suffix = f"{span}h"
            fields[f"{pollutant}_{suffix}_ugm3"] = round(mean, 3)
            fields[f"{pollutant}_index"] = index
            indices[pollutant] = index
        if not indices:
            return {}
        worst = max(indices, key=lambda p: (indices[p], -self.pollutants.index(p)))
        fields["index"] = indices[worst]
        fields["band"] = str(daqi_band(np.array([indices[worst]], dtype=np.int8))[0])
        fields["pollutant"] = worst
        fields["pm_only"] = not ({"no2", "o3"} & set(indices))
        return fields
