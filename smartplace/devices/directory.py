"""Ingest's view of the registry, kept from retained messages on {prefix}/registry/{device_id}.

Ingest never opens the registry's SQLite file: the provisioning CLI publishes
each device's record (retained), so every worker, however many, knows every
device, and learns of a new or retired one within seconds, without a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from smartplace.devices.model import DeviceRecord

REGISTRY_LEVEL = "registry"


def registry_topic(prefix: str, device_id: str) -> str:
    return f"{prefix}/{REGISTRY_LEVEL}/{device_id}"


class DeviceDirectory:
    def __init__(self) -> None:
        self._devices: dict[str, DeviceRecord] = {}
        self.sites: dict[str, str] = {}
        """Device id -> site, for the devices that have one (kept here, not rebuilt per batch)."""

    @property
    def devices(self) -> Mapping[str, DeviceRecord]:
        return self._devices

    def get(self, device_id: str) -> DeviceRecord | None:
        return self._devices.get(device_id)

    def apply(self, device_id: str, payload: bytes) -> DeviceRecord | None:
        """Take a registry message; an empty payload (a cleared retained message) forgets the device.

        Raises ValueError when the payload is not a device record for ``device_id``.
        """
        if not payload:
            self._devices.pop(device_id, None)
            self.sites.pop(device_id, None)
            return None
        try:
            document: Any = orjson.loads(payload)
            record = DeviceRecord.model_validate(document)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"not a device record: {str(exc).splitlines()[0][:200]}") from None
        if record.device_id != device_id:
            raise ValueError(f"record names {record.device_id}, topic names {device_id}")
        self.restore(record)
        return record

    def restore(self, record: DeviceRecord) -> None:
        """Know a device from a record already checked (a message just now, or saved state)."""
        self._devices[record.device_id] = record
        if record.site:
            self.sites[record.device_id] = record.site
        else:
            self.sites.pop(record.device_id, None)
