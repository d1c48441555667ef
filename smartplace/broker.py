"""A paho-mqtt client set up from MqttSettings: protocol, credentials, TLS, reconnect backoff.

Shared by the ingest subscriber and the simulator's publisher so both reach
the broker the same way.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from smartplace.config import Credentials, MqttSettings

__all__ = ["Credentials", "describe", "make_client"]


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
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def describe(settings: MqttSettings) -> str:
    scheme = "mqtts" if settings.tls_ca_file else "mqtt"
    return f"{scheme}://{settings.host}:{settings.port}"
