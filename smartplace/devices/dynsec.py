"""Commands to mosquitto's dynamic-security plugin, over MQTT.

Requests go to ``$CONTROL/dynamic-security/v1`` as ``{"commands": [...]}``
and answers come back on ``.../response``, one per command, in order, with an
``error`` where a command failed. Only the admin account may do this.

The accounts and roles smartplace keeps there, each account bound to one
client id (smartplace.accounts says which; mosquitto refuses any other at
CONNECT: plugins/dynamic-security/auth.c, dynsec_auth__basic_auth_callback):
- each device: a client named as its id, with a role that may publish only
  under ``{prefix}/{kind}/{device_id}/`` and subscribe to nothing;
- ingest (and each of its workers): may subscribe to ``{prefix}/#`` and its
  extra subscriptions;
- the simulator: may publish anywhere under the prefix (and TTN-style topics)
  except the registry;
- the admin (who runs the devices commands) may also publish the registry
  (granted in the plugin's file before the broker starts: see stack.mosquitto).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import orjson
import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from smartplace.accounts import Identity, ingest_identities, simulator_identities
from smartplace.broker import Credentials, connect_and_wait, make_client
from smartplace.config import MqttSettings
from smartplace.errors import MqttError, SmartplaceError

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
BATCH_COMMANDS = 200  # per control message: large imports go in chunks
ROLE_EXISTS = {"createRole": "already exists", "removeRoleACL": "ACL not found"}
"""Errors a re-run may meet and ignore: a role is only ever created with the ACL it needs,
and an ACL already gone (a device's ``#`` from before DEVICE_LEAVES) is gone."""

Command = dict[str, Any]


class DynsecError(SmartplaceError):
    def __init__(self, command: str, error: str, username: str | None = None) -> None:
        whom = f" for {username!r}" if username else ""
        super().__init__(f"the broker refused {command}{whom}: {error}")
        self.command = command
        self.error = error
        self.username = username


class AccountExistsError(SmartplaceError):
    """The broker already has an account of that name, which this call did not create."""


def device_role(device_id: str) -> str:
    return f"device:{device_id}"


DEVICE_LEAVES = ("reading", "status", "senml")
"""The topics a device may publish on, below its own ``{prefix}/{kind}/{device_id}/``.

Not ``#``: every topic keeps one retained message, so a device allowed any depth could
fill the broker (300 retained messages of 1 MiB took mosquitto from 8 to 309 MiB).
A publish elsewhere is refused at the device (PUBACK 0x87), not stored as a reject."""


def device_acls(prefix: str, kind: str, device_id: str) -> list[dict[str, Any]]:
    return [
        {
            "acltype": "publishClientSend",
            "topic": f"{prefix}/{kind}/{device_id}/{leaf}",
            "allow": True,
        }
        for leaf in DEVICE_LEAVES
    ]


def ingest_acls(prefix: str, extra_subscriptions: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {"acltype": "subscribePattern", "topic": topic, "allow": True}
        for topic in (f"{prefix}/#", *extra_subscriptions)
    ]


def simulator_acls(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "acltype": "publishClientSend",
            "topic": f"{prefix}/registry/#",
            "allow": False,
            "priority": 10,
        },
        {"acltype": "publishClientSend", "topic": f"{prefix}/#", "allow": True},
        {"acltype": "publishClientSend", "topic": "v3/#", "allow": True},
        {"acltype": "publishClientSend", "topic": "application/+/device/+/event/up", "allow": True},
    ]


class Dynsec:
    """A short-lived admin connection that sends commands and waits for their answers."""

    def __init__(self, settings: MqttSettings, admin: Credentials, timeout_s: float = 15.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        # The admin account is bound to one client id, its user name (see smartplace.accounts).
        self._client = make_client(settings, admin[0], admin)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._ready = threading.Event()
        self._refused: str | None = None
        self._answer = threading.Event()
        self._responses: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        connect_and_wait(
            self._client,
            self.settings,
            self._ready,
            lambda: self._refused,
            self.timeout_s,
            hint=": check SMARTPLACE_MQTT__ADMIN_USERNAME and SMARTPLACE_MQTT__ADMIN_PASSWORD",
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def run(
        self, commands: Sequence[Command], *, ignore: Mapping[str, str] = ROLE_EXISTS
    ) -> list[dict[str, Any]]:
        """Send commands (in chunks) and return their answers; raise on the first error,
        unless ``ignore`` maps its command to a part of that error's text.

        The plugin carries on after a failed command, so commands that must not run when
        an earlier one fails belong in a later call."""
        answers: list[dict[str, Any]] = []
        for start in range(0, len(commands), BATCH_COMMANDS):
            chunk = list(commands[start : start + BATCH_COMMANDS])
            with self._lock:
                self._responses = []
                self._answer.clear()
                self._client.publish(CONTROL_TOPIC, orjson.dumps({"commands": chunk}), qos=1)
                if not self._answer.wait(self.timeout_s):
                    raise MqttError(
                        f"the broker's dynamic-security plugin did not answer within {self.timeout_s:.0f} s"
                    )
                responses = self._responses
            for command, response in zip(chunk, responses, strict=False):
                error = response.get("error")
                if error and not (
                    command["command"] in ignore and ignore[command["command"]] in error
                ):
                    raise DynsecError(command["command"], error, command.get("username"))
            answers.extend(responses)
        return answers

    # -- the accounts smartplace keeps -----------------------------------------------

    def ensure_service_accounts(self, mqtt: MqttSettings) -> None:
        """Create the ingest and simulator accounts and their roles, or reset their passwords
        and client ids; idempotent. These are the service's own accounts, ours to reset.

        Never touches the admin's own account or role: the broker disconnects the clients
        of an account or role that changes, and would run the admin's command twice on
        its reconnect (its client id is bound in the plugin's file: see stack.mosquitto).
        """
        prefix = mqtt.topic_prefix
        ingest = mqtt.ingest_account()
        simulator = mqtt.simulator_account()
        accounts: list[tuple[str, list[dict[str, Any]], Identity, str]] = []
        if ingest is not None:
            accounts += [
                (
                    f"ingest:{prefix}",
                    ingest_acls(prefix, mqtt.extra_subscriptions),
                    identity,
                    ingest[1],
                )
                for identity in ingest_identities(mqtt)
            ]
        if simulator is not None:
            accounts += [
                (f"simulator:{prefix}", simulator_acls(prefix), identity, simulator[1])
                for identity in simulator_identities(mqtt)
            ]
        commands: list[Command] = []
        roles_made: set[str] = set()
        for role, acls, identity, password in accounts:
            if role not in roles_made:
                commands.append({"command": "createRole", "rolename": role, "acls": acls})
                roles_made.add(role)
            commands += [
                {
                    "command": "createClient",
                    "username": identity.username,
                    "password": password,
                    "clientid": identity.client_id,
                    "roles": [{"rolename": role}],
                },
                {
                    "command": "setClientPassword",
                    "username": identity.username,
                    "password": password,
                },
                {
                    "command": "setClientId",
                    "username": identity.username,
                    "clientid": identity.client_id,
                },
            ]
        self.run(
            commands,
            ignore={
                "createRole": "already exists",
                "createClient": "already exists",
            },
        )

    def usernames(self) -> set[str]:
        """Every account the broker's dynamic security holds."""
        (answer,) = self.run([{"command": "listClients", "verbose": False}])
        return {str(name) for name in answer.get("data", {}).get("clients", [])}

    @staticmethod
    def add_device_commands(prefix: str, kind: str, device_id: str, password: str) -> list[Command]:
        role = device_role(device_id)
        return [
            {
                "command": "createRole",
                "rolename": role,
                "acls": device_acls(prefix, kind, device_id),
            },
            {
                "command": "createClient",
                "username": device_id,
                "password": password,
                "clientid": device_id,  # its only client id: no other session can be reached
                "roles": [{"rolename": role}],
            },
        ]

    @staticmethod
    def retire_device_commands(device_id: str) -> list[Command]:
        # Disabling refuses new logins and disconnects any the device has open.
        return [{"command": "disableClient", "username": device_id}]

    @staticmethod
    def reactivate_device_commands(device_id: str) -> list[Command]:
        return [{"command": "enableClient", "username": device_id}]

    @staticmethod
    def set_password_commands(device_id: str, password: str) -> list[Command]:
        # setClientId too: a device created before accounts were bound gets bound here.
        return [
            {"command": "setClientPassword", "username": device_id, "password": password},
            {"command": "setClientId", "username": device_id, "clientid": device_id},
        ]

    @staticmethod
    def set_kind_commands(prefix: str, old_kind: str, kind: str, device_id: str) -> list[Command]:
        role = device_role(device_id)
        # The old kind's leaves, and the ``#`` a device made before DEVICE_LEAVES was given.
        old_topics = [acl["topic"] for acl in device_acls(prefix, old_kind, device_id)]
        old_topics.append(f"{prefix}/{old_kind}/{device_id}/#")
        return [
            *(
                {
                    "command": "removeRoleACL",
                    "rolename": role,
                    "acltype": "publishClientSend",
                    "topic": topic,
                }
                for topic in old_topics
            ),
            *(
                {"command": "addRoleACL", "rolename": role, **acl}
                for acl in device_acls(prefix, kind, device_id)
            ),
        ]

    # -- paho callbacks ------------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            self._refused = f"refused the admin login: {reason}"
            self._ready.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(
        self, _c: paho.Client, _u: Any, _mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            self._refused = "refused the admin's subscription to the dynamic-security responses"
        self._ready.set()

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        try:
            self._responses = orjson.loads(message.payload).get("responses", [])
        except orjson.JSONDecodeError:
            self._responses = [{"error": "unreadable response"}]
        self._answer.set()
