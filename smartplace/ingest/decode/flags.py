"""The quality bits of a reading, the ``qc_flags`` column: set by decode (a missing time)
and by the quality checks after it."""

from __future__ import annotations

from enum import IntFlag


class QcFlag(IntFlag):
    """Bits are part of the stored data: add new ones, never renumber."""

    TIMESTAMP_MISSING = 1 << 0
    """The device sent no timestamp; the arrival time stands in for it."""
    SPIKE = 1 << 1
    """A value far from the device's recent median (robust z-score over the median absolute deviation)."""
    FLATLINE = 1 << 2
    """The same value several times running: a stuck sensor."""
    DUPLICATE = 1 << 3
    """The same device and timestamp as a reading already seen."""
    OUT_OF_ORDER = 1 << 4
    """Earlier than a reading the device sent before it."""
    HUMIDITY_ARTEFACT = 1 << 5
    """Optical PM in air so humid (at or above the hard limit) that particles swell: PM left out."""
    HUMIDITY_HIGH = 1 << 6
    """Optical PM in humid air (at or above the soft limit): kept, but worth knowing."""
    PM25_ABOVE_PM10 = 1 << 7
    """PM2.5 above PM10, impossible by definition: sensor noise."""
