"""Pydantic models for what devices send, one module per sensor kind."""

from smartplace.schemas.air_quality import AirQualityReading
from smartplace.schemas.reading import DEVICE_ID_PATTERN, DEVICE_ID_RE, Reading, timestamp_to_ns
from smartplace.schemas.topics import (
    ReadingTopic,
    ingest_subscription,
    parse_reading_topic,
    reading_topic,
)

READING_MODELS: dict[str, type[Reading]] = {
    "air_quality": AirQualityReading,
}
"""Reading model by kind, the kind being the topic's second level and the raw measurement's name."""

__all__ = [
    "DEVICE_ID_PATTERN",
    "DEVICE_ID_RE",
    "READING_MODELS",
    "AirQualityReading",
    "Reading",
    "ReadingTopic",
    "ingest_subscription",
    "parse_reading_topic",
    "reading_topic",
    "timestamp_to_ns",
]
