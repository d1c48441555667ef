"""Faults as knobs: each rate is the share of readings (or messages) it hits.

Run-shaped faults (a stuck sensor, a skewed clock, a silence, a buffered
burst) start with probability rate / run length, so that over a long run
their share of readings still comes out at the rate.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

RUN_LENGTH = {"stuck": 8, "clock_skew": 20, "silence": 30, "burst": 10}
"""Readings one occurrence of a run-shaped fault lasts."""
LATE_BY = (3, 20)
"""A late message is sent after this many (min, max) of its device's later messages."""


class FaultRates(BaseModel):
    """Share of readings each fault hits (0 = off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    malformed: float = Field(default=0.0, ge=0, le=1)
    """Payloads that are not valid JSON (rejected: malformed_json)."""
    out_of_range: float = Field(default=0.0, ge=0, le=1)
    """A value no sensor can read (rejected: out_of_range)."""
    spike: float = Field(default=0.0, ge=0, le=1)
    """A value several times its neighbours (stored, flagged spike)."""
    stuck: float = Field(default=0.0, ge=0, le=1)
    """Runs of identical values (stored, flagged flatline)."""
    duplicate: float = Field(default=0.0, ge=0, le=1)
    """The same message sent twice (stored once, the copy flagged duplicate)."""
    late: float = Field(default=0.0, ge=0, le=1)
    """Messages held back behind later ones: out of order on arrival."""
    clock_skew: float = Field(default=0.0, ge=0, le=1)
    """Runs of readings whose device clock is minutes off."""
    silence: float = Field(default=0.0, ge=0, le=1)
    """Runs of readings never sent: the device went quiet."""
    burst: float = Field(default=0.0, ge=0, le=1)
    """Runs of readings buffered, then sent together as one array payload."""
    wrong_topic: float = Field(default=0.0, ge=0, le=1)
    """Messages on a topic naming no known kind (rejected: unknown_kind)."""

    @property
    def any(self) -> bool:
        return any(value > 0 for value in self.model_dump().values())

    def with_overrides(self, overrides: dict[str, float]) -> FaultRates:
        unknown = sorted(set(overrides) - set(type(self).model_fields))
        if unknown:
            raise ValueError(
                f"unknown fault {', '.join(unknown)}; known: {', '.join(type(self).model_fields)}"
            )
        return type(self).model_validate({**self.model_dump(), **overrides})
