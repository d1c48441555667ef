"""Receives readings from the broker and hands them over in micro-batches.

paho-mqtt with MQTT 5, a persistent session and manual acknowledgement: a
QoS 1 message is acknowledged only when the service says its batch is
stored, so a crash before then means the broker delivers it again.
(aiomqtt acknowledges inside its callback, before the application holds
the message, and drops messages when its queue is full: it is not used here.)
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from smartplace.broker import JitteredBackoff, connect_and_wait, describe, make_client
from smartplace.config import MqttSettings
from smartplace.ingest.decode import RawMessage

log = logging.getLogger(__name__)


class MqttSubscriber:
    def __init__(
        self, settings: MqttSettings, subscriptions: Sequence[str], queue_max: int
    ) -> None:
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self._queue: queue.Queue[RawMessage] = queue.Queue(maxsize=queue_max)
        self._client = make_client(
            settings, settings.client_id, settings.ingest_account(), manual_ack=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._connection = 0
        """Counts connections: a message's packet id means something only on the one it came by."""
        self.connected = False
        self.connected_at = 0.0
        """Monotonic time of the latest successful connection."""
        self._backoff = JitteredBackoff(self._client)

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        """Connect, subscribe, and return once the broker confirmed the subscription."""
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        properties.ReceiveMaximum = self.settings.receive_maximum
        connect_and_wait(
            self._client,
            self.settings,
            self._subscribed,
            lambda: self._refused,
            timeout_s,
            clean_start=False,
            properties=properties,
        )

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # -- the service's side --------------------------------------------------------

    def take(self, max_messages: int, max_wait_s: float) -> list[RawMessage]:
        """Up to ``max_messages``, waiting at most ``max_wait_s`` from the first one (or for it)."""
        deadline = time.monotonic() + max_wait_s
        batch: list[RawMessage] = []
        while len(batch) < max_messages:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def ack(self, messages: Sequence[RawMessage]) -> None:
        """Acknowledge, in arrival order, messages now durable in the spool.

        A message that came by an earlier connection is not acknowledged: its
        packet id may now name another message, and the broker sends it again
        anyway (the pipeline then drops the copy as a redelivery).
        """
        current = self._connection
        for message in messages:
            if message.qos > 0 and message.connection == current:
                self._client.ack(message.mid, message.qos)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    # -- paho callbacks (network thread) -------------------------------------------

    def _on_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if reason.is_failure:
            self._refused = f"refused the connection: {reason}"
            log.error("mqtt connect refused reason=%s", reason)
            return
        self._connection += 1
        self.connected = True
        self.connected_at = time.monotonic()
        self._backoff.reset()
        log.info(
            "mqtt connected broker=%s session_present=%s",
            describe(self.settings),
            flags.session_present,
        )
        # Subscriptions survive in a persistent session, but subscribing again is harmless
        # and covers a broker that lost its state.
        client.subscribe([(topic, 1) for topic in self.subscriptions])

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Any,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self._refused = f"refused our subscription: {', '.join(failed)}"
            log.error("mqtt subscribe refused reasons=%s", failed)
            return
        self._subscribed.set()

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        # Blocks when the queue is full: the broker then holds the rest (receive maximum).
        self._queue.put(
            RawMessage(
                message.topic,
                bytes(message.payload),
                time.time_ns(),
                message.mid,
                message.qos,
                bool(message.dup),
                self._connection,
            )
        )

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        delay_s = self._backoff.next_delay()
        log.warning("mqtt broker unreachable; trying again in %.1f s", delay_s)

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        self.connected = False
        if reason.is_failure:
            delay_s = self._backoff.next_delay()
            log.warning("mqtt disconnected reason=%s; reconnecting in %.1f s", reason, delay_s)
