"""Publishes payloads to the broker at QoS 1 and knows when the broker has them all."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from smartplace.accounts import gateway_identity
from smartplace.broker import Credentials, JitteredBackoff, connect_and_wait, make_client
from smartplace.config import MqttSettings


class Publisher:
    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        credentials: Credentials | None,
        max_inflight: int = 1000,
    ) -> None:
        self.settings = settings
        self._client = make_client(settings, client_id, credentials)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._backoff = JitteredBackoff(self._client)
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._connected = threading.Event()
        self._refused: str | None = None
        self._lock = threading.Lock()
        self.published = 0
        self.acknowledged = 0

    def start(self, timeout_s: float = 30.0) -> None:
        connect_and_wait(
            self._client, self.settings, self._connected, lambda: self._refused, timeout_s
        )

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=qos, retain=retain)
        with self._lock:
            self.published += 1

    def publish_and_wait(self, topic: str, payload: bytes, timeout_s: float = 10.0) -> bool:
        """Publish at QoS 1 and wait for the broker's PUBACK; False when none came in time."""
        info = self._client.publish(topic, payload, qos=1)
        with self._lock:
            self.published += 1
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):  # not queued: the client is disconnected
            return False
        return info.is_published()

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until the broker acknowledged everything published; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self.acknowledged >= self.published:
                    return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.flush()
        self.stop()

    def _on_connect(self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self._refused = f"refused the connection: {reason}"
        else:
            self._backoff.reset()
            self._connected.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self._backoff.next_delay()

    def _on_connect_fail(self, *_args: Any) -> None:
        self._backoff.next_delay()

    def _on_publish(
        self, _c: paho.Client, _u: Any, _mid: int, _reason: ReasonCode, _p: Any
    ) -> None:
        with self._lock:
            self.acknowledged += 1


def gateway_publisher(settings: MqttSettings, gateway: str) -> Publisher:
    """A publisher on ``gateway``'s own account (accounts.GATEWAYS), with the simulator's
    password: the TTS webhook receiver and ``lorawan backfill`` publish uplinks with it."""
    identity = gateway_identity(settings, gateway)
    password = settings.simulator_password
    credentials = (identity.username, password.get_secret_value()) if password else None
    return Publisher(settings, identity.client_id, credentials)
