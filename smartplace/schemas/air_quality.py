"""An air quality monitor's reading: particulates, gases and the weather around them.

Ranges are physical limits from DOMAIN.md (sensor ceilings, UK extremes):
outside them a value is an instrument fault, so the reading is rejected.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from smartplace.schemas.reading import Reading

Particulate = Annotated[float, Field(ge=0, le=1000)]  # SDS011 ceiling is 999.9 ug/m3
# Electrochemical gas sensors read slightly negative after baseline subtraction.
NitrogenDioxide = Annotated[float, Field(ge=-5, le=1000)]
Ozone = Annotated[float, Field(ge=-5, le=500)]

POLLUTANT_FIELDS = ("pm1_ugm3", "pm25_ugm3", "pm10_ugm3", "no2_ugm3", "o3_ugm3")


class AirQualityReading(Reading):
    measurement: ClassVar[str] = "air_quality"

    pm1_ugm3: Particulate | None = None
    """PM1 mass concentration, ug/m3."""
    pm25_ugm3: Particulate | None = None
    """PM2.5 mass concentration, ug/m3."""
    pm10_ugm3: Particulate | None = None
    """PM10 mass concentration, ug/m3."""
    no2_ugm3: NitrogenDioxide | None = None
    """Nitrogen dioxide, ug/m3."""
    o3_ugm3: Ozone | None = None
    """Ozone, ug/m3."""
    temperature_c: Annotated[float, Field(ge=-30, le=50)] | None = None
    """Air temperature, degrees Celsius."""
    humidity_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    """Relative humidity, percent."""
    pressure_hpa: Annotated[float, Field(ge=870, le=1090)] | None = None
    """Air pressure, hPa."""

    @model_validator(mode="after")
    def _has_a_pollutant(self) -> Self:
        if (
            self.pm1_ugm3 is None
            and self.pm25_ugm3 is None
            and self.pm10_ugm3 is None
            and self.no2_ugm3 is None
            and self.o3_ugm3 is None
        ):  # POLLUTANT_FIELDS, spelt out: this runs for every reading
            raise PydanticCustomError(
                "no_measurements",
                "an air quality reading needs at least one of " + ", ".join(POLLUTANT_FIELDS),
            )
        return self
