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
from smartplace.errors import ConfigError, MqttError

__all__ = [
    "Credentials",
    "JitteredBackoff",
    "closed_before_connack",
    "connect_and_wait",
    "describe",
    "make_client",
    "tls_context",
    "unreachable",
]

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
    context = tls_context(settings)
    if context is not None:
        client.tls_set_context(context)
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


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The TLS client context for ``settings``, None when TLS is off.

    Trusts only the CA file given (no system roots, unless that file is the system's
    bundle), checks the broker's name against its certificate, and speaks TLS 1.2 or
    later, as the broker's listener does. Raises ConfigError, in one line, when the CA
    file cannot be read or holds no certificate.
    """
    ca_file = settings.tls_ca_file
    if ca_file is None:
        return None
    where = f"SMARTPLACE_MQTT__TLS_CA_FILE ({ca_file})"
    if ca_file.exists() and not ca_file.is_dir() and not ca_file.is_file():
        # a FIFO, /dev/stdin, a device: openssl would read it until a writer ends it
        raise ConfigError(f"{where} is not a regular file")
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except ssl.SSLError as exc:  # before OSError, which it is too
        why = f" ({exc.reason})" if exc.reason else ""  # without it, only "PEM lib (_ssl.c)"
        raise ConfigError(
            f"{where} holds no CA certificate in PEM form{why}: give the CA that signed the"
            " broker's certificate, e.g. .smartplace/tls/ca.crt"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def unreachable(settings: MqttSettings, exc: OSError) -> str:
    """Why a connection to the broker failed, as one line that says what to check."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the MQTT broker at {describe(settings)} has a certificate we do not trust"
            f" ({exc.verify_message}): SMARTPLACE_MQTT__TLS_CA_FILE ({settings.tls_ca_file})"
            " must be the CA that signed it, and the host name one it names"
        )
    # A plain listener resets the connection at a ClientHello, or closes it mid-handshake;
    # refused is before any of that: nothing listens there.
    mid_handshake = isinstance(exc, ConnectionError) and not isinstance(exc, ConnectionRefusedError)
    if isinstance(exc, ssl.SSLError) or (settings.tls_ca_file and mid_handshake):
        return (
            f"no TLS handshake with the MQTT broker at {describe(settings)}"
            f" ({getattr(exc, 'reason', None) or exc}); is {settings.port} its TLS port, not"
            " a plain one?"
        )
    return (
        f"cannot reach the MQTT broker at {describe(settings)} ({exc}); is it running? "
        "('smartplace up' starts a local one)"
    )


def closed_before_connack(settings: MqttSettings) -> str:
    """What to say of a broker that closed the connection instead of answering CONNECT."""
    return "closed the connection without answering CONNECT" + (
        ""
        if settings.tls_ca_file
        else f" (as a TLS listener does to plain MQTT: is {settings.port} a TLS port?"
        " Then set SMARTPLACE_MQTT__TLS_CA_FILE)"
    )


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
        raise MqttError(unreachable(settings, exc)) from exc
    # A broker that closes the connection before CONNACK will not answer however long we
    # wait: mosquitto's TLS listener does so to plain MQTT.
    closed = threading.Event()
    on_disconnect = client.on_disconnect

    def note_closed(*args: Any) -> None:
        if not ready.is_set():
            closed.set()
        if on_disconnect is not None:
            on_disconnect(*args)

    client.on_disconnect = note_closed
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    while (
        not ready.wait(0.1)
        and not refused()
        and not closed.is_set()
        and time.monotonic() < deadline
    ):
        pass
    client.on_disconnect = on_disconnect
    refusal = refused()
    reason = (
        f"{refusal}{hint}"  # the hint is about the account it refused
        if refusal
        else None
        if ready.is_set()
        else closed_before_connack(settings)
        if closed.is_set()
        else "did not answer in time"
    )
    if reason:
        client.disconnect()
        client.loop_stop()
        raise MqttError(f"the MQTT broker at {describe(settings)} {reason}")
