"""The broker accounts smartplace's own services log in with, and the client id each is bound to.

The one place that says which names belong to the service, so that no device
id can ever name one: every account in the broker's dynamic security is
bound to a single client id (mosquitto refuses any other at CONNECT, before
it looks for a session to resume), and a device whose id named a service
account would be handed that account's password, or its session.

- a device: user name and client id are its device id;
- ingest: ``mqtt.username`` with client id ``mqtt.client_id``; worker N of several
  logs in as ``{username}-wN`` with client id ``{client_id}-wN`` (one account per
  worker, as dynamic security binds one client id to an account);
- the simulator and the admin: client id = their user name;
- the LoRaWAN gateways (the TTS webhook receiver, ``lorawan backfill``): the simulator's
  role and password, each on an account of its own, ``{simulator}-{gateway}``, bound to
  that same name, so neither takes the simulator's connection nor another's.

It never talks to the broker: devices.dynsec creates what this names.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartplace.config import MAX_INGEST_WORKERS, MqttSettings
from smartplace.errors import SmartplaceError

RESERVED_PREFIX = "smartplace-"
"""Device ids starting with this are refused: the stack's own accounts are named so."""
INGEST_USERNAME = "smartplace-ingest"
SIMULATOR_USERNAME = "smartplace-simulator"
ADMIN_USERNAME = "smartplace-admin"
INFLUX_READER_USERNAME = "smartplace-reader"
"""The local stack's read-only InfluxDB user (feeds, dashboards)."""


class ReservedNameError(SmartplaceError):
    """A device id names one of the service's own accounts."""


@dataclass(frozen=True, slots=True)
class Identity:
    """One broker account and the only client id it may connect with."""

    username: str
    client_id: str


def worker_identity(username: str, client_id: str, index: int) -> Identity:
    """Ingest worker ``index``'s account when several run (see ingest.shard)."""
    return Identity(f"{username}-w{index}", f"{client_id}-w{index}")


def ingest_identities(mqtt: MqttSettings) -> list[Identity]:
    """Ingest's account, and one per worker up to the most workers settings allow."""
    if mqtt.username is None:
        return []
    return [
        Identity(mqtt.username, mqtt.client_id),
        *(
            worker_identity(mqtt.username, mqtt.client_id, index)
            for index in range(MAX_INGEST_WORKERS)
        ),
    ]


def simulator_client_id(mqtt: MqttSettings) -> str:
    """The client id the simulator's account is bound to: its user name."""
    return mqtt.simulator_username or SIMULATOR_USERNAME


GATEWAYS = ("webhook", "backfill")
"""Services that publish uplinks on devices' behalf, as the simulator may."""


def gateway_identity(mqtt: MqttSettings, gateway: str) -> Identity:
    """The account (and its only client id) ``gateway`` (one of GATEWAYS) publishes with."""
    name = f"{simulator_client_id(mqtt)}-{gateway}"
    return Identity(name, name)


def simulator_identities(mqtt: MqttSettings) -> list[Identity]:
    """The simulator's account, and one per gateway, all in the simulator's role."""
    if mqtt.simulator_username is None:
        return []
    name = simulator_client_id(mqtt)
    return [Identity(name, name), *(gateway_identity(mqtt, gateway) for gateway in GATEWAYS)]


def reserved_names(mqtt: MqttSettings) -> set[str]:
    """Every user name and client id the service's own accounts use with these settings."""
    names = {INGEST_USERNAME, SIMULATOR_USERNAME, ADMIN_USERNAME, mqtt.client_id}
    for identity in [*ingest_identities(mqtt), *simulator_identities(mqtt)]:
        names |= {identity.username, identity.client_id}
    for username in (mqtt.simulator_username, mqtt.admin_username):
        if username is not None:
            names.add(username)
    return names


def reserved_reason(device_id: str, mqtt: MqttSettings) -> str | None:
    """Why ``device_id`` may not be a device, or None when it may."""
    if device_id.startswith(RESERVED_PREFIX):
        return f"device id {device_id!r} is reserved: ids starting with {RESERVED_PREFIX!r} name the service's own accounts"
    if device_id in reserved_names(mqtt):
        return f"device id {device_id!r} is reserved: it names one of the service's own broker accounts"
    return None


def refuse_reserved(device_ids: list[str], mqtt: MqttSettings) -> None:
    """Raise ReservedNameError naming every reserved id among ``device_ids``."""
    reasons = [r for d in device_ids if (r := reserved_reason(d, mqtt)) is not None]
    if reasons:
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise ReservedNameError(f"{reasons[0]}{more}: nothing was changed")
