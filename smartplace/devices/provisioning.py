"""Provisioning: change the registry, then tell every ingest worker.

Each change is written to the SQLite registry in one transaction and then
announced as a retained message on {prefix}/registry/{device_id}, which is
how ingest learns it. Announcing is idempotent, so after a failure
``announce`` can simply be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson

from smartplace.config import Settings
from smartplace.devices.directory import registry_topic
from smartplace.devices.model import DeviceRecord
from smartplace.devices.registry import Registry, hash_secret, new_secret
from smartplace.publisher import Publisher

Progress = Callable[[int], None]


def announce(
    settings: Settings, records: Iterable[DeviceRecord], progress: Progress | None = None
) -> int:
    """Publish each record, retained, for ingest; returns how many. Waits for the broker's acks."""
    count = 0
    with Publisher(
        settings.mqtt,
        f"smartplace-registrar-{settings.mqtt.client_id}",
        settings.mqtt.admin_account(),
    ) as publisher:
        for record in records:
            publisher.publish(
                registry_topic(settings.mqtt.topic_prefix, record.device_id),
                orjson.dumps(record.registry_message()),
                retain=True,
            )
            count += 1
            if progress:
                progress(1)
        publisher.flush()
    return count


def register(registry: Registry, records: Iterable[DeviceRecord]) -> dict[str, str]:
    """Insert new devices in one transaction; returns each one's secret (shown once, stored hashed)."""
    secrets_by_device = {}
    with registry.transaction():
        for record in records:
            secret = new_secret()
            registry.insert(record, hash_secret(secret))
            secrets_by_device[record.device_id] = secret
    return secrets_by_device
