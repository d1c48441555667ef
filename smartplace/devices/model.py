"""A device as the registry knows it, checked at the door.

Ids and sites become MQTT topic levels and InfluxDB tag values, so both are
held to a strict pattern here, with messages that say what is allowed.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartplace.schemas.kinds import KINDS
from smartplace.schemas.profiles import load_profiles
from smartplace.schemas.reading import DEVICE_ID_RE

SITE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
SITE_RE = re.compile(SITE_PATTERN)
DEVICE_ID_RULE = "3-64 characters from a-z, 0-9 and '-', starting with a letter or digit"
SITE_RULE = "2-64 characters from a-z, 0-9 and '-', starting with a letter or digit"

Status = Literal["active", "retired"]
MetadataValue = str | int | float | bool


class DeviceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    device_id: str
    """Unique id; also its MQTT user name and topic level."""
    kind: str
    """air_quality, footfall or bin."""
    site: str | None = None
    """The named place it stands at; tags its points."""
    profile: str | None = None
    """Payload profile for LoRaWAN devices (smartplace/profiles)."""
    latitude: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    """WGS84 latitude."""
    longitude: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None
    """WGS84 longitude."""
    installed_on: date | None = None
    """When it was put up."""
    status: Status = "active"
    metadata: dict[str, MetadataValue] = {}
    """Free-form facts: owner, asset number, mounting height..."""

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if not DEVICE_ID_RE.fullmatch(value):
            raise ValueError(f"device id {value!r} is not allowed: use {DEVICE_ID_RULE}")
        return value

    @field_validator("site")
    @classmethod
    def _site(cls, value: str | None) -> str | None:
        if value is not None and not SITE_RE.fullmatch(value):
            raise ValueError(f"site {value!r} is not allowed: use {SITE_RULE}")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"kind {value!r} is not one of {', '.join(KINDS)}")
        return value

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str | None) -> str | None:
        if value is not None and value not in load_profiles():
            raise ValueError(
                f"profile {value!r} is not one of {', '.join(sorted(load_profiles()))}"
            )
        return value

    def registry_message(self) -> dict[str, Any]:
        """What ingest needs to know, as published (retained) on {prefix}/registry/{device_id}.

        Of the metadata, only what LoRaWAN decoding reads: the DevEUI a ChirpStack
        topic names the device by, and its profile's parameters (a bin's depth).
        """
        wanted = {"dev_eui"}.union(*(p.parameters for p in load_profiles().values()))
        message = self.model_dump(mode="json", exclude={"metadata"})
        kept = {k: v for k, v in self.metadata.items() if k in wanted}
        if kept:
            message["metadata"] = kept
        return message
