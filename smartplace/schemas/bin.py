"""A smart bin's reading: how full it is, and the alarms a street bin raises.

Devices send ``fill_pct`` directly, or the raw ultrasonic ``distance_mm`` from
the lid to the contents, which the decoder converts with the bin's depth from
the device's profile (``fill_pct_from_distance``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from smartplace.schemas.reading import Reading


def fill_pct_from_distance(
    distance_mm: float, empty_distance_mm: float, full_distance_mm: float
) -> float:
    """Fill level from the lid-to-contents distance, clamped to 0..100 %.

    ``empty_distance_mm`` is the distance to the bottom of an empty bin (its
    depth); ``full_distance_mm`` the distance when it is full to the brim.
    """
    span = empty_distance_mm - full_distance_mm
    if span <= 0:
        raise ValueError("a bin's empty distance must exceed its full distance")
    fill = (empty_distance_mm - distance_mm) / span * 100
    return min(100.0, max(0.0, round(fill, 2)))


class BinReading(Reading):
    measurement: ClassVar[str] = "bin"

    fill_pct: Annotated[float, Field(ge=0, le=100)]
    """How full the bin is, percent of its capacity."""
    distance_mm: Annotated[float, Field(ge=0, le=10_000)] | None = None
    """Raw ultrasonic distance from the lid to the contents, mm, when the device measures it."""
    temperature_c: Annotated[float, Field(ge=-40, le=150)] | None = None
    """Temperature inside the bin, degrees Celsius; high values mean fire."""
    tilt: bool | None = None
    """True when the bin (or its sensor) is knocked over or out of position."""
    fire_alarm: bool | None = None
    """True when the device raised its fire (over-temperature) alarm."""

    @model_validator(mode="before")
    @classmethod
    def _needs_a_fill_level(cls, data: object) -> object:
        if isinstance(data, dict) and "fill_pct" not in data:
            message = (
                "fill_pct is required (a distance_mm needs the bin's depth from the device's profile)"
                if "distance_mm" in data
                else "fill_pct is required"
            )
            raise PydanticCustomError("missing_field", message)
        return data
