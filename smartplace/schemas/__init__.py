"""Pydantic models for what devices send, one module per sensor kind, and the input formats."""

from smartplace.schemas.air_quality import AirQualityReading
from smartplace.schemas.bin import BinReading, fill_pct_from_distance
from smartplace.schemas.device_status import DeviceStatusReading
from smartplace.schemas.footfall import FootfallReading
from smartplace.schemas.kinds import KINDS, KindSpec
from smartplace.schemas.reading import DEVICE_ID_PATTERN, DEVICE_ID_RE, Reading, timestamp_to_ns
from smartplace.schemas.topics import Topic, ingest_subscription, parse_topic, reading_topic

__all__ = [
    "DEVICE_ID_PATTERN",
    "DEVICE_ID_RE",
    "KINDS",
    "AirQualityReading",
    "BinReading",
    "DeviceStatusReading",
    "FootfallReading",
    "KindSpec",
    "Reading",
    "Topic",
    "fill_pct_from_distance",
    "ingest_subscription",
    "parse_topic",
    "reading_topic",
    "timestamp_to_ns",
]
