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
Total = Annotated[int, Field(ge=0, le=2**32 - 1)]
"""A counter's cumulative total: an unsigned 32-bit register that wraps."""
RegionCount = Annotated[int, Field(ge=0, le=255)]
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
    # A LoRaWAN counter's own cumulative totals per counting line (uint32, wrapping) and the
    # people it sees in each of its regions, stored as it reported them beside the counts.
    line_1_total_in: Total | None = None
    """Line 1's cumulative count in, as the counter reported it at ``ts``."""
    line_1_total_out: Total | None = None
    """Line 1's cumulative count out."""
    line_2_total_in: Total | None = None
    """Line 2's cumulative count in."""
    line_2_total_out: Total | None = None
    """Line 2's cumulative count out."""
    line_3_total_in: Total | None = None
    """Line 3's cumulative count in."""
    line_3_total_out: Total | None = None
    """Line 3's cumulative count out."""
    line_4_total_in: Total | None = None
    """Line 4's cumulative count in."""
    line_4_total_out: Total | None = None
    """Line 4's cumulative count out."""
    region_1_count: RegionCount | None = None
    """People in the counter's region 1 at ``ts``."""
    region_2_count: RegionCount | None = None
    """People in region 2."""
    region_3_count: RegionCount | None = None
    """People in region 3."""
    region_4_count: RegionCount | None = None
    """People in region 4."""

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
