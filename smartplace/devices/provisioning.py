"""Provisioning: change the registry, the broker's accounts, and tell every ingest worker.

Each change is made in one registry transaction; the broker's accounts are
changed inside it, so a refusal from the broker rolls the registry back.
Afterwards each touched record is announced as a retained message on
{prefix}/registry/{device_id}, which is how ingest learns it. Every step is
idempotent, so after a failure the same command can simply be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from smartplace.config import Credentials, Settings
from smartplace.devices.directory import registry_topic
from smartplace.devices.dynsec import Command, Dynsec
from smartplace.devices.model import DeviceRecord
from smartplace.devices.registry import Registry, RegistryError, hash_secret, new_secret
from smartplace.errors import ConfigError
from smartplace.publisher import Publisher

Progress = Callable[[int], None]
EXISTS = ("already exists",)


def admin_account(settings: Settings) -> Credentials:
    account = settings.mqtt.admin_account()
    if account is None:
        raise ConfigError(
            "provisioning needs the broker's dynamic-security admin: set SMARTPLACE_MQTT__ADMIN_USERNAME "
            "and SMARTPLACE_MQTT__ADMIN_PASSWORD ('smartplace up' writes them to .smartplace/stack.toml)"
        )
    return account


def announce(
    settings: Settings, records: Iterable[DeviceRecord], progress: Progress | None = None
) -> int:
    """Publish each record, retained, for ingest; returns how many. Waits for the broker's acks."""
    count = 0
    with Publisher(
        settings.mqtt, f"smartplace-registrar-{settings.mqtt.client_id}", admin_account(settings)
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
    """Insert new devices (registry only) in one transaction; returns each one's secret."""
    secrets_by_device = {}
    with registry.transaction():
        for record in records:
            secret = new_secret()
            registry.insert(record, hash_secret(secret))
            secrets_by_device[record.device_id] = secret
    return secrets_by_device


@dataclass
class Plan:
    """What applying a set of desired records would do."""

    add: list[DeviceRecord] = field(default_factory=list)
    change: list[tuple[DeviceRecord, DeviceRecord]] = field(default_factory=list)
    """(as registered, as wanted)"""
    retire: list[DeviceRecord] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.retire)

    @property
    def size(self) -> int:
        return len(self.add) + len(self.change) + len(self.retire)


def plan(registry: Registry, wanted: Sequence[DeviceRecord], retire_missing: bool = False) -> Plan:
    result = Plan()
    current = {record.device_id: record for record in registry.list()}
    for record in wanted:
        existing = current.get(record.device_id)
        if existing is None:
            result.add.append(record)
        elif existing == record:
            result.unchanged += 1
        elif (
            record.status == "retired"
            and existing.model_copy(update={"status": "retired"}) == record
        ):
            result.retire.append(existing)
        else:
            result.change.append((existing, record))
    if retire_missing:
        named = {record.device_id for record in wanted}
        result.retire += [
            r for r in current.values() if r.device_id not in named and r.status == "active"
        ]
    return result


class Provisioner:
    """Registry, broker accounts and announcements, changed together."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.prefix = settings.mqtt.topic_prefix

    def apply(self, changes: Plan, progress: Progress | None = None) -> dict[str, str]:
        """Carry out a plan; returns the secret of every added device (shown once, stored hashed)."""
        secrets_by_device: dict[str, str] = {}
        commands: list[Command] = []
        announced: list[DeviceRecord] = []
        with self.registry.transaction():
            for record in changes.add:
                secret = new_secret()
                self.registry.insert(record, hash_secret(secret))
                secrets_by_device[record.device_id] = secret
                commands += self._add_commands(record, secret)
                announced.append(record)
            for old, new in changes.change:
                self.registry.update(new)
                commands += self._change_commands(old, new)
                announced.append(new)
            for record in changes.retire:
                retired = record.model_copy(update={"status": "retired"})
                self.registry.update(retired)
                commands += Dynsec.retire_device_commands(record.device_id)
                announced.append(retired)
            self._run(commands, progress, changes.size)
        announce(self.settings, announced, progress)
        return secrets_by_device

    def rotate_secret(self, device_id: str) -> str:
        record = self.registry.require(device_id)
        if record.status == "retired":
            raise RegistryError(
                f"device {device_id!r} is retired: reactivate it before giving it a secret"
            )
        secret = new_secret()
        with self.registry.transaction():
            self.registry.set_secret_hash(device_id, hash_secret(secret))
            self._run(Dynsec.set_password_commands(device_id, secret))
        return secret

    def _add_commands(self, record: DeviceRecord, secret: str) -> list[Command]:
        commands = Dynsec.add_device_commands(self.prefix, record.kind, record.device_id, secret)
        # A client left behind by an interrupted run gets the secret just handed out.
        commands += Dynsec.set_password_commands(record.device_id, secret)
        if record.status == "retired":
            commands += Dynsec.retire_device_commands(record.device_id)
        return commands

    def _change_commands(self, old: DeviceRecord, new: DeviceRecord) -> list[Command]:
        commands: list[Command] = []
        if old.kind != new.kind:
            commands += Dynsec.set_kind_commands(self.prefix, old.kind, new.kind, new.device_id)
        if old.status != new.status:
            commands += (
                Dynsec.retire_device_commands(new.device_id)
                if new.status == "retired"
                else Dynsec.reactivate_device_commands(new.device_id)
            )
        return commands

    def _run(
        self, commands: list[Command], progress: Progress | None = None, steps: int = 0
    ) -> None:
        if not commands:
            return
        with Dynsec(self.settings.mqtt, admin_account(self.settings)) as dynsec:
            dynsec.run(commands, ignore=EXISTS)
        if progress and steps:
            progress(steps)
