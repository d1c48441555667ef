"""Receives readings from the broker and hands them over in micro-batches.

An MQTT 5 subscriber on a plain socket, read by the service's own loop: one
``recv`` brings hundreds of messages, parsed in one pass (``mqtt_wire``), and
once their batch is fsynced in the spool one ``send`` acknowledges them all.
paho-mqtt did this a message at a time on its own thread, through a queue and
a callback per message, and ingest could go no faster than that (README,
Performance). aiomqtt acknowledges inside its callback, before the
application holds the message, so neither is used here.

The delivery guarantees are the same as before: a persistent session
(clean start off, a week's expiry); a QoS 1 message is acknowledged only
after the service says it is stored, in order, and only on the connection it
came by (its packet id means nothing on another); the broker never has more
than the receive maximum unacknowledged with us; reconnects back off with
jitter and subscribe again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Sequence

from smartplace.broker import JitteredBackoff, describe
from smartplace.config import MqttSettings
from smartplace.errors import MqttError
from smartplace.ingest.decode import RawMessage
from smartplace.ingest.mqtt_wire import (
    CONNACK,
    DISCONNECT,
    DISCONNECT_PACKET,
    PINGREQ_PACKET,
    SUBACK,
    Control,
    ProtocolError,
    connect_packet,
    parse_packets,
    puback_packets,
    subscribe_packet,
)

log = logging.getLogger(__name__)

RECV_BYTES = 256 * 1024
SUBSCRIBE_PACKET_ID = 1


class MqttSubscriber:
    def __init__(
        self, settings: MqttSettings, subscriptions: Sequence[str], max_packet_bytes: int
    ) -> None:
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self.max_packet_bytes = max_packet_bytes
        """Told to the broker (Maximum Packet Size): it discards anything larger for us, so one
        hostile publish cannot make ingest hold more than this."""
        self._socket: socket.socket | None = None
        self._held: list[RawMessage] = []
        """Messages read while waiting for the first SUBACK, handed over by the first take."""
        self._pending = b""
        """Bytes of a packet not yet wholly received."""
        self._connection = 0
        """Counts connections: a message's packet id means something only on the one it came by."""
        self._keepalive_s = float(settings.keepalive_s)
        self._last_sent = 0.0
        self._unanswered_ping_at: float | None = None
        self._retry_at = 0.0
        self._subscribed = False
        self.connected = False
        self.connected_at = 0.0
        """Monotonic time of the latest successful connection."""
        self._backoff = JitteredBackoff()

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> None:
        """Connect, subscribe, and return once the broker confirmed the subscription.

        Raises MqttError when the broker cannot be reached, refuses us, or does not answer.
        """
        deadline = time.monotonic() + timeout_s
        try:
            self._connect(timeout_s)
        except OSError as exc:
            raise MqttError(
                f"cannot reach the MQTT broker at {describe(self.settings)} ({exc}); is it"
                " running? ('smartplace up' starts a local one)"
            ) from exc
        while not self._subscribed:
            if time.monotonic() >= deadline:
                self.stop()
                raise MqttError(
                    f"the MQTT broker at {describe(self.settings)} did not answer in time"
                )
            try:
                self._read(self._held, 1 << 30, deadline - time.monotonic())
            except (_Refused, OSError, ProtocolError) as exc:
                self.stop()
                raise MqttError(f"the MQTT broker at {describe(self.settings)}: {exc}") from None

    def stop(self) -> None:
        """Disconnect normally: the broker keeps the session and queues for us meanwhile."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.sendall(DISCONNECT_PACKET)
            self._close()

    # -- the service's side --------------------------------------------------------

    def take(self, max_messages: int, max_bytes: int, max_wait_s: float) -> list[RawMessage]:
        """Up to ``max_messages`` (or about ``max_bytes`` of payload), waiting at most
        ``max_wait_s`` for the first one and then at most ``max_wait_s`` more for the rest."""
        batch, self._held = self._held, []
        size = sum(len(m.payload) for m in batch)
        deadline = time.monotonic() + max_wait_s
        first_seen = bool(batch)
        while len(batch) < max_messages and size < max_bytes:
            now = time.monotonic()
            if batch and not first_seen:
                first_seen, deadline = True, now + max_wait_s
            if now >= deadline:
                break
            if self._socket is None:
                self._reconnect(deadline)
                continue
            before = len(batch)
            try:
                self._read(batch, max_messages, deadline - now)
                self._check_alive()
                self.keep_alive()
            except _Refused as exc:
                self._drop(str(exc), loud=True)
            except (OSError, ProtocolError) as exc:
                self._drop(str(exc))
            size += sum(len(m.payload) for m in batch[before:])
        return batch

    def ack(self, messages: Sequence[RawMessage]) -> None:
        """Acknowledge, in arrival order and in one write, messages now durable in the spool.

        A message that came by an earlier connection is not acknowledged: its
        packet id may now name another message, and the broker sends it again
        anyway (the pipeline then drops the copy as a redelivery).
        """
        current = self._connection
        ids = [m.mid for m in messages if m.qos > 0 and m.connection == current]
        if ids and self._socket is not None:
            try:
                self._send(puback_packets(ids))
            except OSError as exc:
                self._drop(f"could not acknowledge: {exc}")

    def keep_alive(self) -> None:
        """Ping when we have sent nothing for half the keep-alive. Call it also while not
        taking messages (a full spool), or the broker would think us gone."""
        if self._socket is None or time.monotonic() - self._last_sent < self._keepalive_s / 2:
            return
        try:
            self._send(PINGREQ_PACKET)
        except OSError as exc:
            self._drop(f"could not ping: {exc}")
            return
        if self._unanswered_ping_at is None:
            self._unanswered_ping_at = self._last_sent

    def _check_alive(self) -> None:
        """A broker that has sent nothing, not even PINGRESP, for a keep-alive after our ping
        is gone (a dead host sends no FIN); only judged while reading, so a full spool's
        unread bytes do not count against it."""
        since = self._unanswered_ping_at
        if since is not None and time.monotonic() - since > self._keepalive_s:
            raise ConnectionAbortedError("the broker went quiet: no answer to our ping")

    # -- the connection ------------------------------------------------------------

    def _connect(self, timeout_s: float) -> None:
        s = self.settings
        raw = socket.create_connection((s.host, s.port), timeout=timeout_s)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock: socket.socket = raw
        if s.tls_ca_file is not None:
            context = ssl.create_default_context(cafile=str(s.tls_ca_file))
            sock = context.wrap_socket(raw, server_hostname=s.host)
        self._socket, self._pending, self._subscribed = sock, b"", False
        self._unanswered_ping_at = None
        self._keepalive_s = float(s.keepalive_s)
        self._send(
            connect_packet(
                s.client_id,
                s.keepalive_s,
                s.ingest_account(),
                clean_start=False,
                session_expiry_s=s.session_expiry_s,
                receive_maximum=s.receive_maximum,
                maximum_packet_size=self.max_packet_bytes,
            )
        )

    def _reconnect(self, deadline: float) -> None:
        """One attempt when the backoff allows, else wait (never past ``deadline``)."""
        now = time.monotonic()
        if now < self._retry_at:
            time.sleep(max(0.0, min(self._retry_at, deadline) - now))
            return
        try:
            self._connect(min(10.0, self.settings.keepalive_s))
        except OSError as exc:
            self._drop(str(exc))

    def _read(self, batch: list[RawMessage], max_messages: int, wait_s: float) -> None:
        """Whatever arrives within ``wait_s``: messages into ``batch``, the rest handled here."""
        sock = self._socket
        assert sock is not None
        if self._pending_messages(batch, max_messages):
            return  # whole packets were already waiting
        sock.settimeout(max(wait_s, 0.0005))
        try:
            chunk = sock.recv(RECV_BYTES)
        except TimeoutError:
            return
        if not chunk:
            raise ConnectionResetError("the broker closed the connection")
        self._unanswered_ping_at = None  # any bytes show it is there
        self._pending = self._pending + chunk if self._pending else chunk
        self._pending_messages(batch, max_messages)

    def _pending_messages(self, batch: list[RawMessage], max_messages: int) -> bool:
        """Parse the whole packets read so far; True when that added a message."""
        if not self._pending:
            return False
        before = len(batch)
        controls: list[Control] = []
        used = parse_packets(
            self._pending,
            time.time_ns(),
            self._connection,
            self.max_packet_bytes,
            batch,
            controls,
            max_messages,
        )
        self._pending = self._pending[used:]
        for control in controls:
            self._on_control(control)
        return len(batch) > before

    def _on_control(self, control: Control) -> None:
        if control.kind == CONNACK:
            assert control.reason is not None
            if control.reason.is_failure:
                raise _Refused(f"refused the connection: {control.reason}")
            if control.server_keepalive_s:
                self._keepalive_s = float(control.server_keepalive_s)
            self._connection += 1
            self.connected, self.connected_at = True, time.monotonic()
            self._backoff.reset()
            log.info(
                "mqtt connected broker=%s session_present=%s",
                describe(self.settings),
                control.session_present,
            )
            # Subscriptions survive in a persistent session, but subscribing again is
            # harmless and covers a broker that lost its state.
            self._send(subscribe_packet(SUBSCRIBE_PACKET_ID, self.subscriptions))
        elif control.kind == SUBACK:
            assert control.reason is not None
            if control.reason.is_failure:
                raise _Refused(f"refused our subscription: {control.reason}")
            self._subscribed = True
        elif control.kind == DISCONNECT:
            why = f"{control.reason}" + (
                f" ({control.reason_string})" if control.reason_string else ""
            )
            raise ConnectionAbortedError(f"the broker disconnected us: {why}")
        # PINGRESP: hearing it was the point.

    def _send(self, data: bytes) -> None:
        assert self._socket is not None
        self._socket.settimeout(self._keepalive_s)
        self._socket.sendall(data)
        self._last_sent = time.monotonic()

    def _close(self) -> bool:
        """Close the connection; whether it had been accepted (CONNACK)."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        self._socket, self._pending, self._subscribed = None, b"", False
        was_connected, self.connected = self.connected, False
        return was_connected

    def _drop(self, why: str, loud: bool = False) -> None:
        """Close the connection and try again after a jittered backoff."""
        was_connected = self._close()
        delay_s = self._backoff.next_delay()
        self._retry_at = time.monotonic() + delay_s
        if loud:
            log.error("MQTT BROKER REFUSES US: %s; trying again in %.1f s", why, delay_s)
        elif was_connected:
            log.warning("mqtt disconnected (%s); reconnecting in %.1f s", why, delay_s)
        else:
            log.warning("mqtt broker unreachable (%s); trying again in %.1f s", why, delay_s)


class _Refused(Exception):  # noqa: N818 - a reason, raised to the loop that reconnects
    """The broker answered but said no (credentials, ACL): worth an error, then a retry."""
