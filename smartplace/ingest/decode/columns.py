"""A micro-batch of one measurement's readings as columns: numpy arrays per field.

Everything downstream of decode (quality, downsampling, line protocol) works
on these, never on lists of dicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from smartplace.schemas.reading import FieldType

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    measurement: str
    """Raw measurement name (the model's), e.g. air_quality or device_status."""
    kind: str
    """The device kind, stored as the ``kind`` tag."""
    fields: tuple[str, ...]
    """Numeric fields (float, int and bool), in ``values`` column order."""
    field_types: tuple[FieldType, ...]
    device_ids: npt.NDArray[np.str_]
    """Device id per reading."""
    ts_ns: IntArray
    """Event time per reading, ns since the epoch, UTC."""
    values: FloatArray
    """Shape (readings, fields); NaN where a device did not measure a field; bools as 0/1."""
    qc_flags: npt.NDArray[np.uint32]
    """QcFlag bitmask per reading."""
    text_fields: tuple[str, ...] = ()
    texts: npt.NDArray[np.object_] | None = None
    """Shape (readings, text fields): str or None."""
    sites: npt.NDArray[np.str_] | None = None
    """The registry's site per reading ('' where it names none), stored as the site tag."""
    received_ns: IntArray | None = None
    """Arrival time of each reading's message (the delivery ledger's hour)."""

    def __len__(self) -> int:
        return len(self.ts_ns)

    def field(self, name: str) -> FloatArray:
        column: FloatArray = self.values[:, self.fields.index(name)]
        return column
