"""Quality flags carried by every raw point as the bitmask field ``qc_flags``.

A flag never removes a raw value; aggregates leave flagged values out.
Bits are part of the stored data: add new ones, never renumber.
"""

from __future__ import annotations

from enum import IntFlag


class QcFlag(IntFlag):
    TIMESTAMP_MISSING = 1 << 0
    """The device sent no timestamp; the arrival time stands in for it."""


# Flags that keep a value out of aggregates. A missing timestamp does not:
# the arrival time of a live reading is within seconds of its measurement.
EXCLUDED_FROM_AGGREGATES = QcFlag(0)
