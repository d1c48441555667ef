"""A footfall counter's reading: people crossing its line in and out over an interval.

The interval is explicit, so counts from counters with different reporting
periods add up correctly. Cumulative counters (VS133 totals) are turned into
per-interval counts before they get here.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from smartplace.schemas.reading import Reading

Count = Annotated[int, Field(ge=0, le=1_000_000)]
# A busy doorway passes a few people a second; 20/s sustained over an interval is a fault.
MAX_PEOPLE_PER_S = 20


class FootfallReading(Reading):
    measurement: ClassVar[str] = "footfall"

    count_in: Count
    """People counted entering during the interval."""
    count_out: Count
    """People counted leaving during the interval."""
    interval_s: Annotated[int, Field(gt=0, le=86_400)]
    """Length of the counting interval that ends at ``ts``, seconds."""
    occupancy: Count | None = None
    """People inside the counted area at ``ts``, where the counter knows."""

    @model_validator(mode="after")
    def _plausible_rate(self) -> Self:
        if self.count_in + self.count_out > MAX_PEOPLE_PER_S * self.interval_s:
            raise PydanticCustomError(
                "out_of_range",
                "{total} people in {seconds} s is more than {limit} a second",
                {
                    "total": self.count_in + self.count_out,
                    "seconds": self.interval_s,
                    "limit": MAX_PEOPLE_PER_S,
                },
            )
        return self
