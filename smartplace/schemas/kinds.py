"""The sensor kinds smartplace knows, each with its reading model."""

from smartplace.schemas.air_quality import AirQualityReading
from smartplace.schemas.bin import BinReading
from smartplace.schemas.footfall import FootfallReading
from smartplace.schemas.reading import Reading

READING_MODELS: dict[str, type[Reading]] = {
    "air_quality": AirQualityReading,
    "footfall": FootfallReading,
    "bin": BinReading,
}
"""Reading model by device kind (the topic's second level)."""

KINDS = tuple(READING_MODELS)
