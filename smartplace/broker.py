"""A paho-mqtt client set up from MqttSettings: protocol, credentials, TLS, reconnect backoff.

Shared by the ingest subscriber and the simulator's publisher so both reach
the broker the same way.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from smartplace.config import Credentials, MqttSettings
from smartplace.errors import MqttError

__all__ = ["Credentials", "JitteredBackoff", "connect_and_wait", "describe", "make_client"]

RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 30.0


def make_client(
    settings: MqttSettings,
    client_id: str,
    credentials: Credentials | None,
    *,
    manual_ack: bool = False,
) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    if credentials is not None:
        client.username_pw_set(*credentials)
    if settings.tls_ca_file is not None:
        client.tls_set(ca_certs=str(settings.tls_ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.reconnect_delay_set(min_delay=int(RECONNECT_MIN_S), max_delay=int(RECONNECT_MAX_S))
    return client


class JitteredBackoff:
    """Reconnect delays that double up to a ceiling, each drawn at random from its upper half.

    paho doubles its delay but adds no jitter, so every ingest worker and
    simulator a broker restart dropped would come back in the same second.
    With a paho client, call ``next_delay`` from on_disconnect (paho waits
    after that callback) and ``reset`` from on_connect; without one, the
    caller waits the delay itself.
    """

    def __init__(self, client: paho.Client | None = None) -> None:
        self._client = client
        self._ceiling_s = RECONNECT_MIN_S

    def next_delay(self) -> float:
        delay_s = random.uniform(self._ceiling_s / 2, self._ceiling_s)  # noqa: S311 - not crypto
        if self._client is not None:
            # paho's next wait is its minimum when its own doubling is reset, which this does.
            self._client.reconnect_delay_set(min_delay=delay_s, max_delay=RECONNECT_MAX_S)  # type: ignore[arg-type]
        self._ceiling_s = min(self._ceiling_s * 2, RECONNECT_MAX_S)
        return delay_s

    def reset(self) -> None:
        self._ceiling_s = RECONNECT_MIN_S

    @property
    def ceiling_s(self) -> float:
        """The upper bound of the next delay."""
        return self._ceiling_s


def describe(settings: MqttSettings) -> str:
    scheme = "mqtts" if settings.tls_ca_file else "mqtt"
    return f"{scheme}://{settings.host}:{settings.port}"


def connect_and_wait(
    client: paho.Client,
    settings: MqttSettings,
    ready: threading.Event,
    refused: Callable[[], str | None],
    timeout_s: float,
    hint: str = "",
    **connect_options: Any,
) -> None:
    """Connect, start the network loop, and return once ``ready`` is set by a callback.

    Raises MqttError, with the loop stopped, when the broker cannot be reached,
    refuses us (``refused()`` says why), or does not answer in time.
    """
    try:
        client.connect(
            settings.host, settings.port, keepalive=settings.keepalive_s, **connect_options
        )
    except OSError as exc:
        raise MqttError(
            f"cannot reach the MQTT broker at {describe(settings)} ({exc}); is it running? "
            "('smartplace up' starts a local one)"
        ) from exc
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    while not ready.wait(0.1) and not refused() and time.monotonic() < deadline:
        pass
    reason = refused() or (None if ready.is_set() else "did not answer in time")
    if reason:
        client.disconnect()
        client.loop_stop()
        raise MqttError(f"the MQTT broker at {describe(settings)} {reason}{hint}")
