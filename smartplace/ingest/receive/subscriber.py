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

What the broker says in CONNACK is taken as it says it (MQTT 5.0, 3.2.2.3):
the session expiry it grants (a shorter one than configured is an error: an
outage longer than it loses the backlog), its keep-alive, its maximum packet
size, the client id it assigns; its Receive Maximum bounds only what a
client publishes, and ingest publishes nothing (it sends CONNECT, SUBSCRIBE,
PUBACK, PINGREQ and DISCONNECT), so it holds for any. Subscriptions ask for
QoS 1 at most, so a QoS 2 delivery is a protocol error (3.8.4-8). A message
over our Maximum Packet Size, which a conforming broker drops for us but
ejabberd sends anyway, is handed over cut short (refused as
payload_too_large) and the rest of it skipped, instead of dropping the
connection and being sent it again.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Sequence

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from smartplace.broker import (
    JitteredBackoff,
    closed_before_connack,
    describe,
    tls_context,
    unreachable,
)
from smartplace.config import MqttSettings
from smartplace.errors import MqttError
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.mqtt_wire import (
    CONNACK,
    DISCONNECT,
    DISCONNECT_PACKET,
    PINGREQ_PACKET,
    PROTOCOL_ERROR,
    SESSION_TAKEN_OVER,
    SUBACK,
    Control,
    ProtocolError,
    Subscription,
    connect_packet,
    disconnect_packet,
    parse_connack,
    parse_packets,
    puback_packets,
    subscribe_packet,
)

log = logging.getLogger(__name__)

RECV_BYTES = 256 * 1024
STABLE_CONNECTION_S = 60.0
"""A connection that lasted this long resets the reconnect backoff; one that failed sooner
(refused, cut, or sent something we drop it for) lets the backoff keep growing."""


class MqttSubscriber:
    def __init__(
        self,
        settings: MqttSettings,
        subscriptions: Sequence[Subscription],
        max_packet_bytes: int,
        max_payload_bytes: int,
    ) -> None:
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self.max_packet_bytes = max_packet_bytes
        """Told to the broker (Maximum Packet Size): it discards anything larger for us, so one
        hostile publish cannot make ingest hold more than this."""
        self.max_payload_bytes = max_payload_bytes
        """What is kept of a message over max_packet_bytes that the broker sends anyway: one byte
        more, so it is refused as payload_too_large."""
        self.client_id = settings.client_id
        """The client id we connect with: the configured one, or the one the broker assigned."""
        self.session_expiry_granted_s: int | None = None
        """How long the broker keeps our session while we are away, as it said in CONNACK."""
        self.keepalive_s = float(settings.keepalive_s)
        """The keep-alive in force: ours, or the broker's Server Keep Alive (0: no pings)."""
        self.broker_maximum_packet_bytes: int | None = None
        """The largest packet the broker takes from us (CONNACK), None when unlimited."""
        self.stable_after_s = STABLE_CONNECTION_S
        self._socket: socket.socket | None = None
        self._held: list[RawMessage] = []
        """Messages read while waiting for the first SUBACK, handed over by the first take."""
        self._pending = b""
        """Bytes of a packet not yet wholly received."""
        self._next_stamp_ns = 0
        self._connection = 0
        """Counts connections: a message's packet id means something only on the one it came by."""
        self._skip = 0
        """Bytes of an oversized PUBLISH still to come, discarded as they arrive."""
        self._oversized: RawMessage | None = None
        """That PUBLISH, cut short: handed over once the rest of it has passed."""
        self._last_sent = 0.0
        self._unanswered_ping_at: float | None = None
        self._retry_at = 0.0
        self._subscribed = False
        self._resumed = False
        """CONNACK said the broker kept our session (and so our subscriptions)."""
        self._unanswered_subscribes: dict[int, list[Subscription]] = {}
        """SUBSCRIBE packet id -> its filters, until its SUBACK."""
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
            raise MqttError(unreachable(self.settings, exc)) from exc
        # A resumed session's backlog comes between CONNACK and SUBACK, up to Receive Maximum
        # messages: hold none of it past the first read, but let the service spool it, and
        # take the SUBACK as it comes (the broker kept our subscriptions with the session).
        while not self._subscribed and not (self._resumed and self._held):
            if time.monotonic() >= deadline:
                self.stop()
                raise MqttError(
                    f"the MQTT broker at {describe(self.settings)} did not answer in time"
                )
            try:
                self._read(self._held, 1 << 30, deadline - time.monotonic())
            except ProtocolError as exc:
                self._send_disconnect(exc.code)
                self._close()
                raise MqttError(
                    f"{describe(self.settings)}: the broker broke the protocol: {exc}"
                ) from None
            except (_Refused, OSError) as exc:
                answered = self.connected
                self.stop()
                if isinstance(exc, ConnectionError) and not answered:
                    # reset or closed before CONNACK: mosquitto's TLS listener, to plain MQTT
                    raise MqttError(
                        f"the MQTT broker at {describe(self.settings)}"
                        f" {closed_before_connack(self.settings)}"
                    ) from None
                raise MqttError(f"{describe(self.settings)}: {exc}") from None

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
            except ProtocolError as exc:
                self._send_disconnect(exc.code)
                self._drop(
                    f"the broker broke the protocol: {exc}; we disconnected with reason"
                    f" 0x{exc.code:02X}",
                    loud=True,
                )
            except OSError as exc:
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
        if (
            self._socket is None
            or not self.keepalive_s
            or time.monotonic() - self._last_sent < self.keepalive_s / 2
        ):
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
        if since is not None and time.monotonic() - since > self.keepalive_s:
            raise ConnectionAbortedError("the broker went quiet: no answer to our ping")

    # -- the connection ------------------------------------------------------------

    def _connect(self, timeout_s: float) -> None:
        s = self.settings
        context = tls_context(s)
        raw = socket.create_connection((s.host, s.port), timeout=timeout_s)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock: socket.socket = raw
        if context is not None:
            try:
                sock = context.wrap_socket(raw, server_hostname=s.host)
            except BaseException:
                raw.close()
                raise
        self._socket, self._pending, self._subscribed = sock, b"", False
        self._skip, self._oversized = 0, None
        self._unanswered_ping_at = None
        self.keepalive_s = float(s.keepalive_s)
        self.broker_maximum_packet_bytes = None
        self._send(
            connect_packet(
                self.client_id,
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
            raise ConnectionResetError(
                "the broker closed the connection without a DISCONNECT (mosquitto does so when"
                f" another client connects with our client id {self.client_id!r})"
            )
        self._unanswered_ping_at = None  # any bytes show it is there
        self._pending = self._pending + chunk if self._pending else chunk
        self._pending_messages(batch, max_messages)

    def _pending_messages(self, batch: list[RawMessage], max_messages: int) -> bool:
        """Parse the whole packets read so far; True when that added a message."""
        before = len(batch)
        if not self.connected:
            # CONNACK first, on its own: what comes with it in the same read belongs to the
            # connection it opens, so is acknowledged on it.
            connack = parse_connack(self._pending, self.max_packet_bytes)
            if connack is None:
                return False
            self._pending = self._pending[connack[1] :]
            self._on_connack(connack[0])
        while self._pending and len(batch) < max_messages:
            if self._skip:
                self._discard_oversized(batch)
                continue
            controls: list[Control] = []
            # Arrival times only rise, one nanosecond at least from message to message.
            stamp = max(time.time_ns(), self._next_stamp_ns)
            parsed = len(batch)
            used, self._skip = parse_packets(
                self._pending,
                stamp,
                self._connection,
                self.max_packet_bytes,
                self.max_payload_bytes,
                batch,
                controls,
                max_messages,
            )
            self._next_stamp_ns = stamp + len(batch) - parsed
            self._pending = self._pending[used:]
            for control in controls:
                self._on_control(control)
            if not self._skip:
                break
            self._oversized = message = batch.pop()
            log.warning(
                "the broker sent a message of %d bytes on %s, over the %d-byte Maximum Packet"
                " Size ingest asked for (a conforming broker drops it): acknowledging it and"
                " storing it as a payload_too_large reject, the rest of it skipped unread",
                len(message.payload) + self._skip,
                message.topic,
                self.max_packet_bytes,
            )
        return len(batch) > before

    def _discard_oversized(self, batch: list[RawMessage]) -> None:
        """Drop what has come of an oversized PUBLISH's rest; hand it over once it has all."""
        dropped = min(self._skip, len(self._pending))
        self._pending, self._skip = self._pending[dropped:], self._skip - dropped
        if not self._skip and self._oversized is not None:
            batch.append(self._oversized)
            self._oversized = None

    def _on_connack(self, control: Control) -> None:
        assert control.reason is not None
        if control.reason.is_failure:
            raise _Refused(
                f"the broker refused the connection: {control.reason}"
                f" (0x{control.reason.value:02X})"
                + (f" ({control.reason_string})" if control.reason_string else "")
            )
        s = self.settings
        if control.server_keepalive_s is not None:
            self.keepalive_s = float(control.server_keepalive_s)  # 3.2.2.3.14: it must be used
        if control.assigned_client_id:
            if self.client_id:
                log.warning(
                    "the MQTT broker assigned us client id %r though we sent %r; using it",
                    control.assigned_client_id,
                    self.client_id,
                )
            self.client_id = control.assigned_client_id  # our session's name from now on
        self.broker_maximum_packet_bytes = control.maximum_packet_size
        granted = (
            s.session_expiry_s if control.session_expiry_s is None else control.session_expiry_s
        )
        if granted < s.session_expiry_s and granted != self.session_expiry_granted_s:
            log.error(
                "MQTT BROKER KEEPS OUR SESSION ONLY %d s, not the %d s configured"
                " (mqtt.session_expiry_s): readings published during an outage longer than that"
                " are lost. Raise the broker's limit, or set mqtt.session_expiry_s to %d to"
                " accept it",
                granted,
                s.session_expiry_s,
                granted,
            )
        if self._connection and not control.session_present and s.session_expiry_s:
            log.error(
                "MQTT BROKER HAD NO SESSION FOR US (it expired, or the broker lost it): what was"
                " published for ingest while it was away is lost"
            )
        self.session_expiry_granted_s = granted
        self._resumed = control.session_present
        self._connection += 1
        self.connected, self.connected_at = True, time.monotonic()
        log.info(
            "mqtt connected broker=%s client_id=%s session_present=%s session_expiry_s=%d"
            " keepalive_s=%g",
            describe(s),
            self.client_id,
            control.session_present,
            granted,
            self.keepalive_s,
        )
        # Subscriptions survive in a persistent session, but subscribing again is
        # harmless and covers a broker that lost its state.
        self._unanswered_subscribes = {}
        for packet_id, group in enumerate(self._subscribe_groups(), start=1):
            self._unanswered_subscribes[packet_id] = group
            self._send(subscribe_packet(packet_id, group))

    def _subscribe_groups(self) -> list[list[Subscription]]:
        """The subscriptions in as few SUBSCRIBEs as the broker's Maximum Packet Size allows."""
        limit = self.broker_maximum_packet_bytes
        groups: list[list[Subscription]] = [[]]
        for subscription in self.subscriptions:
            if limit is not None and len(subscribe_packet(1, [subscription])) > limit:
                raise _Refused(
                    f"the subscription {subscription.topic_filter!r} does not fit the broker's"
                    f" Maximum Packet Size of {limit} bytes"
                )
            candidate = [*groups[-1], subscription]
            if limit is None or len(subscribe_packet(1, candidate)) <= limit:
                groups[-1] = candidate
            else:
                groups.append([subscription])
        return groups

    def _on_control(self, control: Control) -> None:
        if control.kind == CONNACK:
            raise ProtocolError("a second CONNACK (3.2.0-2)", PROTOCOL_ERROR)
        if control.kind == SUBACK:
            self._on_suback(control)
        elif control.kind == DISCONNECT:
            assert control.reason is not None
            why = f"{control.reason} (0x{control.reason.value:02X})" + (
                f" ({control.reason_string})" if control.reason_string else ""
            )
            if control.reason.value == SESSION_TAKEN_OVER:
                raise _Refused(
                    f"another client connected with our client id {self.client_id!r} and took"
                    f" our session over ({why}): two ingest workers share one client id"
                    " (mqtt.client_id), or someone else logs in as ingest"
                )
            raise ConnectionAbortedError(f"the broker disconnected us: {why}")
        # PINGRESP: hearing it was the point.

    def _on_suback(self, control: Control) -> None:
        group = self._unanswered_subscribes.pop(control.packet_id, None)
        if group is None:
            raise ProtocolError(
                f"a SUBACK for packet id {control.packet_id}, which we did not send",
                PROTOCOL_ERROR,
            )
        if len(control.codes) != len(group):
            raise ProtocolError(
                f"a SUBACK with {len(control.codes)} reason codes for {len(group)} filters (3.9.3)",
                PROTOCOL_ERROR,
            )
        refused = [
            f"{subscription.topic_filter!r}: {ReasonCode(PacketTypes.SUBACK, identifier=code)}"
            f" (0x{code:02X})"
            for subscription, code in zip(group, control.codes, strict=True)
            if code >= 0x80
        ]
        if refused:
            raise _Refused(f"the broker refused our subscription to {'; '.join(refused)}")
        for subscription, code in zip(group, control.codes, strict=True):
            if code == 0:
                log.warning(
                    "the MQTT broker granted %r at QoS 0 only: its messages may be lost",
                    subscription.topic_filter,
                )
        self._subscribed = not self._unanswered_subscribes

    def _send(self, data: bytes) -> None:
        assert self._socket is not None
        self._socket.settimeout(float(self.settings.keepalive_s))
        self._socket.sendall(data)
        self._last_sent = time.monotonic()

    def _send_disconnect(self, reason_code: int) -> None:
        """Tell the broker why we are going (4.13), as far as the socket still lets us."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._send(disconnect_packet(reason_code))

    def _close(self) -> bool:
        """Close the connection; whether it had been accepted (CONNACK)."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        self._socket, self._pending, self._subscribed = None, b"", False
        self._skip, self._oversized = 0, None
        was_connected, self.connected = self.connected, False
        return was_connected

    def _drop(self, why: str, loud: bool = False) -> None:
        """Close the connection and try again after a jittered backoff, which starts again from
        its minimum only after a connection that had lasted: a broker that accepts us and then
        drops us at once is not hammered with reconnects."""
        was_connected = self._close()
        if was_connected and time.monotonic() - self.connected_at >= self.stable_after_s:
            self._backoff.reset()
        delay_s = self._backoff.next_delay()
        self._retry_at = time.monotonic() + delay_s
        if loud:
            log.error("MQTT CONNECTION FAILED: %s; trying again in %.1f s", why, delay_s)
        elif was_connected:
            log.warning("mqtt disconnected (%s); reconnecting in %.1f s", why, delay_s)
        else:
            log.warning("mqtt broker unreachable (%s); trying again in %.1f s", why, delay_s)


class _Refused(Exception):  # noqa: N818 - a reason, raised to the loop that reconnects
    """The broker answered but said no (credentials, ACL): worth an error, then a retry."""
