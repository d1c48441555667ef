"""Several ingest workers, each handling its own devices: a device's windows stay whole.

Every worker subscribes to everything (its own persistent session) and keeps
only the messages whose device id hashes to it; it acknowledges the rest
unspooled, since another worker spools them. One process's pipeline runs on
one core (the GIL), so on arrays of readings a second worker can use the
core the first leaves idle (README, Performance). Each message crosses the
broker once per worker, so for one reading per message one worker is best.
"""

from __future__ import annotations

import zlib
from contextlib import suppress

from smartplace.accounts import worker_identity
from smartplace.config import Settings
from smartplace.devices.directory import DeviceDirectory
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas.chirpstack import topic_device_id
from smartplace.schemas.topics import parse_topic


def shard_of(prefix: str, topic: str, workers: int) -> int:
    """The worker for a topic's messages: by device id (stable across restarts and
    machines); a topic that names no device goes to worker 0, so its reject is counted once."""
    if workers == 1:
        return 0
    parsed = parse_topic(prefix, topic)
    if parsed is None or not parsed.device_id:
        return 0
    return device_shard(parsed.device_id, workers)


class MessageShards:
    """The worker for each message, as ``shard_of``, except a ChirpStack event: its topic
    names a DevEUI, and the device is the one the registry gives it (as decoding finds it),
    so it goes to that device's worker, where its registry record and windows are. The
    registry is learnt from the records every worker receives."""

    def __init__(self, prefix: str, workers: int, max_payload_bytes: int) -> None:
        self.prefix, self.workers, self.max_payload_bytes = prefix, workers, max_payload_bytes
        self.registry = DeviceDirectory()

    def of(self, message: RawMessage) -> int:
        parsed = parse_topic(self.prefix, message.topic)
        if parsed is None or not parsed.device_id:
            return 0
        device_id = parsed.device_id
        if parsed.leaf == "registry":
            with suppress(ValueError):  # a record refused where it is decoded
                self.registry.apply(device_id, message.payload)
        elif parsed.leaf == "chirpstack":
            devices, limit = self.registry.devices, self.max_payload_bytes
            device_id = topic_device_id(device_id, message.payload, devices, limit)
        return device_shard(device_id, self.workers)


def device_shard(device_id: str, workers: int) -> int:
    """The worker that handles a device's messages (and so its windows)."""
    return zlib.crc32(device_id.encode("utf-8", "surrogateescape")) % workers


def worker_settings(settings: Settings, index: int) -> Settings:
    """One worker's settings: its own MQTT session, spool and health port (one worker: as given)."""
    ingest = settings.ingest
    if ingest.workers == 1:
        return settings
    if not 0 <= index < ingest.workers:
        raise ValueError(f"worker {index} of {ingest.workers} does not exist")
    # Each worker has an account of its own: the broker binds one client id to an account.
    mqtt_updates: dict[str, object] = {"client_id": f"{settings.mqtt.client_id}-w{index}"}
    if settings.mqtt.username is not None:
        own = worker_identity(settings.mqtt.username, settings.mqtt.client_id, index)
        mqtt_updates["username"] = own.username
    mqtt = settings.mqtt.model_copy(update=mqtt_updates)
    updates: dict[str, object] = {"worker_index": index}
    if ingest.spool_dir is not None:
        updates["spool_dir"] = ingest.spool_dir / f"worker-{index}"
    if ingest.http_port:
        updates["http_port"] = ingest.http_port + index
    return settings.model_copy(update={"mqtt": mqtt, "ingest": ingest.model_copy(update=updates)})
