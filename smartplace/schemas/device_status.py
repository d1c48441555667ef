"""A device's health: battery, radio link, firmware, uptime, and position where it knows it.

Published on ``{prefix}/{kind}/{device_id}/status`` and taken from LoRaWAN
envelopes (best RSSI/SNR over the gateways that heard the frame).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from smartplace.schemas.reading import Reading

STATUS_FIELDS = (
    "battery_pct",
    "battery_v",
    "rssi_dbm",
    "snr_db",
    "firmware",
    "uptime_s",
    "latitude",
    "longitude",
)


class DeviceStatusReading(Reading):
    measurement: ClassVar[str] = "device_status"

    battery_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    """Battery charge, percent."""
    battery_v: Annotated[float, Field(ge=0, le=15)] | None = None
    """Battery voltage, volts."""
    rssi_dbm: Annotated[float, Field(ge=-150, le=0)] | None = None
    """Received signal strength of the device's last uplink, dBm."""
    snr_db: Annotated[float, Field(ge=-30, le=30)] | None = None
    """Signal-to-noise ratio of the device's last uplink, dB."""
    firmware: (
        Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[\x20-\x7e]+$")] | None
    ) = None
    """Firmware version as the device reports it."""
    uptime_s: Annotated[int, Field(ge=0)] | None = None
    """Seconds since the device last started."""
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    """WGS84 latitude of a device that reports its position."""
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    """WGS84 longitude of a device that reports its position."""

    @model_validator(mode="after")
    def _has_something(self) -> Self:
        if all(getattr(self, name) is None for name in STATUS_FIELDS):
            raise PydanticCustomError(
                "no_measurements", "a status needs at least one of " + ", ".join(STATUS_FIELDS)
            )
        return self
