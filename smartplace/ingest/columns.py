"""A micro-batch of one kind's readings as columns: numpy arrays per field.

Everything downstream of decode (quality, downsampling, line protocol) works
on these, never on lists of dicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    kind: str
    fields: tuple[str, ...]
    device_ids: npt.NDArray[np.str_]
    """Device id per reading."""
    ts_ns: IntArray
    """Event time per reading, ns since the epoch, UTC."""
    values: FloatArray
    """Shape (readings, fields); NaN where a device did not measure a field."""
    qc_flags: npt.NDArray[np.uint32]
    """QcFlag bitmask per reading."""

    def __len__(self) -> int:
        return len(self.ts_ns)

    def field(self, name: str) -> FloatArray:
        column: FloatArray = self.values[:, self.fields.index(name)]
        return column
