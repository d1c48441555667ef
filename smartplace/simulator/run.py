"""Drives a simulated fleet in real time: every device reports once per interval."""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from smartplace.accounts import simulator_client_id
from smartplace.config import Settings
from smartplace.devices.model import DeviceRecord
from smartplace.devices.provisioning import Provisioner, announce, plan, register
from smartplace.devices.registry import Registry
from smartplace.errors import SmartplaceError
from smartplace.publisher import Publisher
from smartplace.schemas import reading_topic
from smartplace.simulator.air_quality import AirQualityGenerator
from smartplace.simulator.bins import BinGenerator
from smartplace.simulator.fleet import Fleet, load_fleet
from smartplace.simulator.footfall import FootfallGenerator
from smartplace.simulator.traffic import Outgoing

log = logging.getLogger(__name__)


def air_quality_device_ids(count: int) -> list[str]:
    return [f"aq-{i:04d}" for i in range(1, count + 1)]


def fleet_records(device_ids: list[str], kind: str = "air_quality") -> list[DeviceRecord]:
    """Registry records for a quick-mode fleet, spread over the default fleet's sites."""
    sites = load_fleet().sites
    return [
        DeviceRecord(
            device_id=device_id,
            kind=kind,
            site=sites[i % len(sites)].name,
            latitude=round(sites[i % len(sites)].latitude + (i // len(sites)) * 0.0001, 6),
            longitude=sites[i % len(sites)].longitude,
            metadata={"simulated": True},
        )
        for i, device_id in enumerate(device_ids)
    ]


def provision_fleet(settings: Settings, device_ids: list[str]) -> int:
    """Register the devices that are new and announce all of them to ingest; returns how many are new."""
    records = fleet_records(device_ids)
    with Registry(settings.registry_file) as registry:
        new = [r for r in records if registry.get(r.device_id) is None]
        register(settings, registry, new)
    announce(settings, records)
    return len(new)


def simulate(
    settings: Settings,
    devices: int,
    interval_s: float,
    duration_s: float | None,
    stop: threading.Event,
    publisher: Publisher | None = None,
    seed: int = 0,
) -> int:
    """Publish until ``duration_s`` passes or ``stop`` is set; returns readings published."""
    generator = AirQualityGenerator(air_quality_device_ids(devices), seed=seed)
    own_publisher = publisher is None
    publisher = publisher or Publisher(
        settings.mqtt, simulator_client_id(settings.mqtt), settings.mqtt.simulator_account()
    )
    if own_publisher:
        publisher.start()
    prefix = settings.mqtt.topic_prefix
    started = time.monotonic()
    next_tick = started
    try:
        while not stop.is_set():
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            for reading in generator.readings(datetime.now(UTC)):
                topic = reading_topic(prefix, "air_quality", reading["device_id"])
                publisher.publish(topic, orjson.dumps(reading))
            next_tick += interval_s
            stop.wait(max(0.0, next_tick - time.monotonic()))
        publisher.flush()
    finally:
        if own_publisher:
            publisher.stop()
    log.info("simulator published=%d", publisher.published)
    return publisher.published


def read_secrets(path: Path) -> dict[str, str]:
    """device_id -> secret, from the CSV that 'devices add/import' writes."""
    try:
        with path.open(newline="") as handle:
            return {row["device_id"]: row["secret"] for row in csv.DictReader(handle)}
    except (OSError, KeyError) as exc:
        raise SmartplaceError(f"cannot read device secrets from {path}: {exc}") from None


def publish_as_devices(settings: Settings, secrets_by_device: dict[str, str], seed: int = 0) -> int:
    """One reading from each device, each over its own connection with its own credentials.

    What a real fleet does, and what proves each device's account and ACL work.
    Devices connect one after another, so a thousand need no thousand threads.
    """
    generator = AirQualityGenerator(sorted(secrets_by_device), seed=seed)
    published = 0
    for reading in generator.readings(datetime.now(UTC)):
        device_id = str(reading.pop("device_id"))
        credentials = (device_id, secrets_by_device[device_id])
        # A device's account is bound to its id as client id (see smartplace.accounts).
        with Publisher(settings.mqtt, device_id, credentials) as publisher:
            publisher.publish(
                reading_topic(settings.mqtt.topic_prefix, "air_quality", device_id),
                orjson.dumps(reading),
            )
            if not publisher.flush(10):
                raise SmartplaceError(f"the broker did not acknowledge {device_id}'s reading")
        published += 1
    return published


def simulated_day(
    kind: str, device_ids: list[str], day_start: datetime, interval_s: int, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """A whole day of one kind's readings per device, in time order: for backfills and tests."""
    next_batch: Callable[[datetime], list[dict[str, Any]]]
    if kind == "air_quality":
        next_batch = AirQualityGenerator(device_ids, seed=seed).readings
    else:
        generator = (FootfallGenerator if kind == "footfall" else BinGenerator)(
            device_ids, seed=seed
        )
        next_batch = partial(generator.readings, interval_s=interval_s)
    days: dict[str, list[dict[str, Any]]] = {device: [] for device in device_ids}
    for step in range(86_400 // interval_s):
        batch = next_batch(day_start + timedelta(seconds=step * interval_s))
        for reading in batch:
            days[str(reading.pop("device_id"))].append(reading)
    return days


def fleet_publishers(
    settings: Settings, fleet: Fleet, provision: bool
) -> tuple[Callable[[Outgoing], Publisher], list[Publisher]]:
    """Who publishes each message: the simulator's own account, or (``provision``) each
    device with its own credentials, after registering the fleet through the devices module.

    TTN uplinks always go out on the simulator's account: on a real system the network
    server publishes them, not the device.
    """
    own = Publisher(
        settings.mqtt, simulator_client_id(settings.mqtt), settings.mqtt.simulator_account()
    )
    own.start()
    if not provision:
        return (lambda _message: own), [own]
    members = {d.device_id: d for d in fleet.members()}
    with Registry(settings.registry_file) as registry:
        provisioner = Provisioner(settings, registry)
        secrets = provisioner.apply(
            plan(settings, registry, [d.record() for d in members.values()])
        )
        for device_id, device in members.items():
            if device_id not in secrets and device.format != "ttn":
                secrets[device_id] = provisioner.rotate_secret(device_id)  # ours to rotate
    by_device: dict[str, Publisher] = {}
    for device_id, secret in secrets.items():
        if members[device_id].format == "ttn":
            continue
        publisher = Publisher(settings.mqtt, device_id, (device_id, secret), max_inflight=100)
        publisher.start()
        by_device[device_id] = publisher

    def choose(message: Outgoing) -> Publisher:
        return by_device.get(message.device_id, own)

    return choose, [own, *by_device.values()]
