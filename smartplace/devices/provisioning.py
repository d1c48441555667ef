"""Provisioning: change the registry, the broker's accounts, and tell every ingest worker.

Each change is made in one registry transaction; the broker's accounts are
changed inside it, so a refusal from the broker rolls the registry back.
Provisioning never changes an account it did not create in the same call,
except a registered device's (rotate-secret): a device id naming a service
account is refused at the door (smartplace.accounts), and an add whose
account already exists in the broker is refused before anything is sent.
Afterwards each touched record is announced as a retained message on
{prefix}/registry/{device_id}, which is how ingest learns it. Every step is
idempotent, so after a failure the same command can simply be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from smartplace.accounts import refuse_reserved
from smartplace.config import Credentials, Settings
from smartplace.devices.directory import registry_topic
from smartplace.devices.dynsec import AccountExistsError, Command, Dynsec
from smartplace.devices.model import DeviceRecord
from smartplace.devices.registry import Registry, RegistryError, hash_secret, new_secret
from smartplace.errors import ConfigError
from smartplace.publisher import Publisher

Progress = Callable[[int], None]


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
    admin = admin_account(settings)
    # The admin account is bound to one client id, its user name (see smartplace.accounts).
    with Publisher(settings.mqtt, admin[0], admin) as publisher:
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


def register(
    settings: Settings, registry: Registry, records: Sequence[DeviceRecord]
) -> dict[str, str]:
    """Insert new devices (registry only) in one transaction; returns each one's secret."""
    refuse_reserved([record.device_id for record in records], settings.mqtt)
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


def plan(
    settings: Settings,
    registry: Registry,
    wanted: Sequence[DeviceRecord],
    retire_missing: bool = False,
) -> Plan:
    """What applying ``wanted`` would do; raises ReservedNameError when a record's id names a
    service account (so that ``--plan`` shows the refusal, not an ordinary add)."""
    refuse_reserved([record.device_id for record in wanted], settings.mqtt)
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
        refuse_reserved([record.device_id for record in changes.add], self.settings.mqtt)
        secrets_by_device: dict[str, str] = {}
        creations: list[Command] = []
        commands: list[Command] = []
        announced: list[DeviceRecord] = []
        with self.registry.transaction():
            for record in changes.add:
                secret = new_secret()
                self.registry.insert(record, hash_secret(secret))
                secrets_by_device[record.device_id] = secret
                creations += Dynsec.add_device_commands(
                    self.prefix, record.kind, record.device_id, secret
                )
                if record.status == "retired":
                    commands += Dynsec.retire_device_commands(record.device_id)
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
            if creations or commands:
                with Dynsec(self.settings.mqtt, admin_account(self.settings)) as dynsec:
                    if creations:
                        self._refuse_existing(dynsec, [r.device_id for r in changes.add])
                        # Alone, first: the plugin runs the commands after a failed one, and
                        # none of these may touch an account whose creation failed.
                        dynsec.run(creations)
                    dynsec.run(commands)
                if progress and changes.size:
                    progress(changes.size)
        announce(self.settings, announced, progress)
        return secrets_by_device

    @staticmethod
    def _refuse_existing(dynsec: Dynsec, device_ids: list[str]) -> None:
        """Refuse adds whose account the broker already holds: it is not ours to change."""
        taken = sorted(set(device_ids) & dynsec.usernames())
        if taken:
            more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
            raise AccountExistsError(
                f"the broker already has an account named {taken[0]!r}{more} that the registry "
                "does not list: it was left untouched and nothing was changed. Choose another "
                "device id, or delete that account ('mosquitto_ctrl dynsec deleteClient') if it "
                "is a device's left by an interrupted run"
            )

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
            dynsec.run(commands)
        if progress and steps:
            progress(steps)
