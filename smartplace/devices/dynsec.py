"""Commands to mosquitto's dynamic-security plugin, over MQTT.

Requests go to ``$CONTROL/dynamic-security/v1`` as ``{"commands": [...]}``
and answers come back on ``.../response``, one per command, in order, with an
``error`` where a command failed. Only the admin account may do this.

The accounts and roles smartplace keeps there:
- each device: a client named as its id, with a role that may publish only
  under ``{prefix}/{kind}/{device_id}/`` and subscribe to nothing;
- ingest: may subscribe to ``{prefix}/#`` and its extra subscriptions;
- the simulator: may publish anywhere under the prefix (and TTN-style topics)
  except the registry;
- the admin (who runs the devices commands) may also publish the registry
  (granted in the plugin's file before the broker starts: see stack.mosquitto).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import orjson
import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from smartplace.broker import Credentials, connect_and_wait, make_client
from smartplace.config import MqttSettings
from smartplace.errors import MqttError, SmartplaceError

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
BATCH_COMMANDS = 200  # per control message: large imports go in chunks

Command = dict[str, Any]


class DynsecError(SmartplaceError):
    def __init__(self, command: str, error: str) -> None:
        super().__init__(f"the broker refused {command}: {error}")
        self.command = command
        self.error = error


def device_role(device_id: str) -> str:
    return f"device:{device_id}"


def device_acls(prefix: str, kind: str, device_id: str) -> list[dict[str, Any]]:
    return [
        {"acltype": "publishClientSend", "topic": f"{prefix}/{kind}/{device_id}/#", "allow": True}
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
        self._client = make_client(settings, f"smartplace-dynsec-{uuid.uuid4().hex[:12]}", admin)
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
        self, commands: Sequence[Command], *, ignore: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Send commands (in chunks) and return their answers; raise on the first error not in ``ignore``."""
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
                if error and not any(part in error for part in ignore):
                    raise DynsecError(command["command"], error)
            answers.extend(responses)
        return answers

    # -- the accounts smartplace keeps -----------------------------------------------

    def ensure_service_accounts(
        self,
        prefix: str,
        extra_subscriptions: Sequence[str],
        ingest: Credentials,
        simulator: Credentials | None,
    ) -> None:
        """Create the ingest and simulator accounts and their roles, or reset their passwords; idempotent.

        Never touches the admin's own role: the broker disconnects the clients of a
        role that changes, and would run the admin's command twice on its reconnect.
        """
        accounts = [(f"ingest:{prefix}", ingest_acls(prefix, extra_subscriptions), ingest)]
        if simulator is not None:
            accounts.append((f"simulator:{prefix}", simulator_acls(prefix), simulator))
        commands: list[Command] = []
        for role, acls, (username, password) in accounts:
            commands += [
                {"command": "createRole", "rolename": role, "acls": acls},
                {
                    "command": "createClient",
                    "username": username,
                    "password": password,
                    "roles": [{"rolename": role}],
                },
                {"command": "setClientPassword", "username": username, "password": password},
            ]
        self.run(commands, ignore=("already exists",))

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
        return [{"command": "setClientPassword", "username": device_id, "password": password}]

    @staticmethod
    def set_kind_commands(prefix: str, old_kind: str, kind: str, device_id: str) -> list[Command]:
        role = device_role(device_id)
        return [
            {
                "command": "removeRoleACL",
                "rolename": role,
                "acltype": "publishClientSend",
                "topic": f"{prefix}/{old_kind}/{device_id}/#",
            },
            {"command": "addRoleACL", "rolename": role, **device_acls(prefix, kind, device_id)[0]},
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
