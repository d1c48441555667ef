"""Bin collections, found as a sharp fall in a bin's fill between consecutive readings.

DOMAIN.md: a drop of 40 percentage points or more, or falling below 15 %
from above 50 %. Per device, in arrival order, carried across batches; the
result is a ``collected`` column (1.0 on the reading after the fall).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from smartplace.ingest.decode.columns import FloatArray, ReadingColumns

SHARP_FALL_PCT = 40.0
EMPTY_BELOW_PCT = 15.0
WAS_FULL_ABOVE_PCT = 50.0


def collections(previous: FloatArray, fill: FloatArray) -> FloatArray:
    """1.0 where going from ``previous`` to ``fill`` is a collection, else 0.0 (NaN never is)."""
    with np.errstate(invalid="ignore"):
        fell = (previous - fill >= SHARP_FALL_PCT) | (
            (fill < EMPTY_BELOW_PCT) & (previous > WAS_FULL_ABOVE_PCT)
        )
    return fell.astype(np.float64)


class CollectionDetector:
    def __init__(self) -> None:
        self._last_fill: dict[str, float] = {}

    def mark(self, columns: ReadingColumns) -> ReadingColumns:
        """The batch with a ``collected`` column added (counted in aggregates, stored raw)."""
        fill = columns.field("fill_pct")
        order = np.argsort(columns.device_ids, kind="stable")  # by device, arrival order kept
        devices = columns.device_ids[order]
        starts = np.ones(len(order), dtype=bool)
        starts[1:] = devices[1:] != devices[:-1]
        previous = np.empty(len(order))
        previous[1:] = fill[order][:-1]
        previous[starts] = [self._last_fill.get(d, np.nan) for d in devices[starts].tolist()]
        collected = np.empty(len(order))
        collected[order] = collections(previous, fill[order])
        last = np.r_[np.flatnonzero(starts)[1:] - 1, len(order) - 1]
        self._last_fill.update(zip(devices[last].tolist(), fill[order][last].tolist(), strict=True))
        return replace(
            columns,
            fields=(*columns.fields, "collected"),
            field_types=(*columns.field_types, "bool"),
            values=np.column_stack([columns.values, collected]),
        )
