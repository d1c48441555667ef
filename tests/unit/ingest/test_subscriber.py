"""The MQTT client's edge cases, each against a byte-level scripted broker (tests/scripted_broker.py):
what a real broker cannot be made to do on cue. Every expected packet and log line is exact."""

from __future__ import annotations

import logging
import time

import pytest

import smartplace.broker
from smartplace.config import MqttSettings, Settings
from smartplace.errors import MqttError
from smartplace.ingest.health import problems
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.mqtt_wire import Subscription
from smartplace.ingest.receive.subscriber import MqttSubscriber
from smartplace.ingest.service import IngestService
from smartplace.ingest.stats import IngestStats, stats_line
from tests.scripted_broker import (
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PUBACK,
    PUBLISH,
    PUBREL,
    SUBSCRIBE,
    Connection,
    ScriptedBroker,
    accept_and_subscribe,
    connack,
    connect_client_id,
    connect_properties,
    disconnect,
    publish,
    scripted_broker,
    suback,
    subscribe_filters,
)

PACKET_LIMIT = 1 << 20
PAYLOAD_LIMIT = 1000
READING = "p/air_quality/aq-1/reading"
FILTERS = [Subscription("p/#"), Subscription("v3/+/devices/+/up", retain_handling=2)]


def subscriber_for(broker: ScriptedBroker, **settings: object) -> MqttSubscriber:
    mqtt = MqttSettings(port=broker.port, **settings)  # type: ignore[arg-type]
    return MqttSubscriber(mqtt, FILTERS, PACKET_LIMIT, PAYLOAD_LIMIT)


def take_until(subscriber: MqttSubscriber, count: int, timeout_s: float = 20.0) -> list[RawMessage]:
    got: list[RawMessage] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        got += subscriber.take(100, 1 << 30, 0.05)
    return got


def take_and_ack(
    broker: ScriptedBroker, subscriber: MqttSubscriber, count: int
) -> list[RawMessage]:
    """``count`` messages, acknowledged, once the broker has had every PUBACK."""
    batch = take_until(subscriber, count)
    subscriber.ack(batch)
    deadline = time.monotonic() + 20
    while sum(p.kind == PUBACK for p in broker.connections[0].received) < count:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return batch


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconnect delays of 1/64 s doubling to 1 s: exact in binary, short in a test."""
    monkeypatch.setattr(smartplace.broker, "RECONNECT_MIN_S", 1 / 64)
    monkeypatch.setattr(smartplace.broker, "RECONNECT_MAX_S", 1.0)


def test_messages_in_the_same_read_as_connack_are_acknowledged_on_its_connection() -> None:
    def script(connection: Connection) -> None:
        # A resumed session: the broker sends its queue right behind CONNACK, in one write.
        accept_and_subscribe(
            connection, publish(READING, b"1", packet_id=11), publish(READING, b"2", packet_id=12)
        )
        connection.expect(PUBACK)
        connection.expect(PUBACK)

    with scripted_broker(script) as broker:
        subscriber = subscriber_for(broker)
        subscriber.start()
        batch = subscriber.take(100, 1 << 30, 0.05)
        subscriber.ack(batch)
        assert [(m.payload, m.mid) for m in batch] == [(b"1", 11), (b"2", 12)]
    pubacks = [p.packet_id for p in broker.connections[0].received if p.kind == PUBACK]
    assert pubacks == [11, 12]


def test_subscribe_asks_at_most_qos1_and_a_qos2_delivery_is_a_protocol_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def script(connection: Connection) -> None:
        accept_and_subscribe(connection)
        connection.send(publish(READING, b"x", packet_id=5, qos=2))
        connection.expect(DISCONNECT)
        assert connection.read() is None  # and nothing after it: no PUBACK, no PUBREC

    def idle(connection: Connection) -> None:
        accept_and_subscribe(connection)
        connection.read()

    with scripted_broker(script, idle) as broker:
        subscriber = subscriber_for(broker)
        subscriber.start()
        assert take_until(subscriber, 1, timeout_s=1.0) == []
        subscriber.stop()
    first = broker.connections[0].received
    subscribe = next(p for p in first if p.kind == SUBSCRIBE)
    assert subscribe_filters(subscribe) == [("p/#", 0x01), ("v3/+/devices/+/up", 0x21)]
    assert [(p.kind, p.body) for p in first if p.kind in (PUBACK, DISCONNECT)] == [
        (DISCONNECT, b"\x82")
    ]
    assert any(
        r.levelno == logging.ERROR
        and r.getMessage().startswith(
            "MQTT CONNECTION FAILED: the broker broke the protocol: a QoS 2 PUBLISH on a"
            " subscription of at most QoS 1 (3.8.4-8); we disconnected with reason 0x82;"
        )
        for r in caplog.records
    )


def test_a_shorter_session_than_configured_is_an_error_in_the_log_readyz_and_stats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def script(connection: Connection) -> None:
        accept_and_subscribe(connection, SessionExpiryInterval=300)
        connection.read()

    with scripted_broker(script) as broker:
        subscriber = subscriber_for(broker, session_expiry_s=604_800)
        subscriber.start()
        subscriber.stop()
    assert subscriber.session_expiry_granted_s == 300
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "MQTT BROKER KEEPS OUR SESSION ONLY 300 s, not the 604800 s configured"
        " (mqtt.session_expiry_s): readings published during an outage longer than that are"
        " lost. Raise the broker's limit, or set mqtt.session_expiry_s to 300 to accept it"
    ]
    service = IngestService(Settings())
    service.stats.session_expiry_granted_s = subscriber.session_expiry_granted_s
    service.stats.mqtt_connected = True
    assert problems(service) == [
        "the MQTT broker keeps ingest's session 300 s, not the 604800 s configured: an outage"
        " longer than that loses readings"
    ]
    line = stats_line("w", service.stats, 0, 1)
    assert "session_expiry_granted_s=300i" in line
    assert "session_expiry_short=true" in line


def test_a_session_granted_as_asked_is_no_problem() -> None:
    stats = IngestStats(session_expiry_configured_s=300, session_expiry_granted_s=300)
    assert not stats.session_expiry_short()
    assert "session_expiry_short=false" in stats_line("w", stats, 0, 1)


def test_server_keep_alive_and_maximum_packet_size_are_honoured() -> None:
    def script(connection: Connection) -> None:
        connection.expect(CONNECT)
        connection.send(connack(ServerKeepAlive=2, MaximumPacketSize=30))
        for _ in range(2):  # each filter in a SUBSCRIBE of its own, to fit 30 bytes
            subscribe = connection.expect(SUBSCRIBE)
            connection.send(suback(subscribe.packet_id, 1))
        connection.expect(PINGREQ)  # within 1 s of pings, not the 15 s of our own 30 s
        connection.send(b"\xd0\x00")
        connection.read()

    with scripted_broker(script) as broker:
        subscriber = subscriber_for(broker, keepalive_s=30)
        subscriber.start()
        assert subscriber.keepalive_s == 2.0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            p.kind == PINGREQ for p in broker.connections[0].received
        ):
            subscriber.take(10, 1 << 30, 0.1)
        subscriber.stop()
    subscribes = [p for p in broker.connections[0].received if p.kind == SUBSCRIBE]
    assert [subscribe_filters(p) for p in subscribes] == [
        [("p/#", 0x01)],
        [("v3/+/devices/+/up", 0x21)],
    ]
    assert all(len(p.body) + 2 <= 30 for p in subscribes)
    assert any(p.kind == PINGREQ for p in broker.connections[0].received)


def test_a_broker_receive_maximum_of_one_is_never_exceeded_ingest_publishes_nothing() -> None:
    # The broker's Receive Maximum bounds the QoS 1 and 2 PUBLISHes a client has unacknowledged
    # with it (3.3.4): ingest only subscribes, so it honours any, down to 1, by sending none.
    # Its own Receive Maximum, in CONNECT, is the setting: the broker's bound towards us.
    def script(connection: Connection) -> None:
        accept_and_subscribe(connection, ReceiveMaximum=1)
        connection.send(b"".join(publish(READING, b"%d" % n, packet_id=n) for n in range(1, 8)))
        for _ in range(7):
            connection.expect(PUBACK)
        connection.read()

    with scripted_broker(script) as broker:
        subscriber = subscriber_for(broker, receive_maximum=7)
        subscriber.start()
        take_and_ack(broker, subscriber, 7)
        subscriber.stop()
    received = broker.connections[0].received
    assert connect_properties(received[0]).ReceiveMaximum == 7
    assert [p.kind for p in received] == [CONNECT, SUBSCRIBE, *[PUBACK] * 7, DISCONNECT]
    assert not [p for p in received if p.kind in (PUBLISH, PUBREL)]
    assert [p.packet_id for p in received if p.kind == PUBACK] == list(range(1, 8))


def test_a_server_keep_alive_of_zero_means_no_pings() -> None:
    with scripted_broker(lambda c: (accept_and_subscribe(c, ServerKeepAlive=0), c.read())) as b:
        subscriber = subscriber_for(b, keepalive_s=5)
        subscriber.start()
        subscriber._last_sent = 0.0  # as if nothing had been sent for a long time
        subscriber.keep_alive()
        subscriber.stop()
    assert subscriber.keepalive_s == 0.0
    assert [p.kind for p in b.connections[0].received] == [CONNECT, SUBSCRIBE, DISCONNECT]


def test_an_assigned_client_id_is_used_from_then_on() -> None:
    def first(connection: Connection) -> None:
        accept_and_subscribe(connection, AssignedClientIdentifier="auto-7")
        connection.close()

    def second(connection: Connection) -> None:
        accept_and_subscribe(connection)
        connection.read()

    with scripted_broker(first, second) as broker:
        subscriber = subscriber_for(broker, client_id="")
        subscriber.start()
        deadline = time.monotonic() + 20
        while len(broker.connections) < 2 or not subscriber.connected:
            assert time.monotonic() < deadline
            subscriber.take(10, 1 << 30, 0.05)
        subscriber.stop()
    ids = [connect_client_id(c.received[0]) for c in broker.connections]
    assert ids == ["", "auto-7"]
    assert subscriber.client_id == "auto-7"


@pytest.mark.security  # one device's oversized publish must not keep ingest reconnecting
def test_an_oversized_message_is_acknowledged_and_handed_over_cut_on_one_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    huge = b"[" + b"1," * PACKET_LIMIT + b"1]"

    def script(connection: Connection) -> None:
        accept_and_subscribe(connection)
        data = publish(READING, huge, packet_id=21) + publish(READING, b"{}", packet_id=22)
        for start in range(0, len(data), 100_000):  # arriving over many reads
            connection.send(data[start : start + 100_000])
        connection.expect(PUBACK)
        connection.expect(PUBACK)
        connection.read()

    with scripted_broker(script) as broker:
        subscriber = subscriber_for(broker)
        subscriber.start()
        batch = take_and_ack(broker, subscriber, 2)
        subscriber.stop()
    assert [(m.topic, m.payload, m.mid) for m in batch] == [
        (READING, huge[: PAYLOAD_LIMIT + 1], 21),
        (READING, b"{}", 22),
    ]
    assert [p.packet_id for p in broker.connections[0].received if p.kind == PUBACK] == [21, 22]
    assert len(broker.connections) == 1
    assert (
        f"the broker sent a message of {len(huge)} bytes on {READING}, over the {PACKET_LIMIT}"
        "-byte Maximum Packet Size ingest asked for (a conforming broker drops it):"
        " acknowledging it and storing it as a payload_too_large reject, the rest of it"
        " skipped unread"
    ) in [r.getMessage() for r in caplog.records]


def _accept_then_close(connection: Connection) -> None:
    connection.expect(CONNECT)
    connection.send(connack())
    subscribe = connection.read()
    # The test's stop() may land between CONNACK and SUBSCRIBE: a DISCONNECT then is fine.
    if subscribe is not None and subscribe.kind != DISCONNECT:
        assert subscribe.kind == SUBSCRIBE, subscribe
        connection.send(suback(subscribe.packet_id, *[1] * len(subscribe_filters(subscribe))))
    connection.close()


def _reconnect(subscriber: MqttSubscriber, broker: ScriptedBroker, connections: int) -> None:
    deadline = time.monotonic() + 30
    while len(broker.connections) < connections:
        assert time.monotonic() < deadline
        subscriber.take(10, 1 << 30, 0.05)


def test_backoff_keeps_growing_while_connections_fail_fast() -> None:
    with scripted_broker(_accept_then_close) as broker:
        subscriber = subscriber_for(broker)
        subscriber.start()
        _reconnect(subscriber, broker, 5)  # four drops, each right after CONNACK and SUBACK
        ceiling = subscriber._backoff.ceiling_s
        subscriber.stop()
    assert ceiling >= 16 / 64  # 1/64 doubled at each of the four drops at least


def test_backoff_starts_again_after_a_connection_that_lasted() -> None:
    with scripted_broker(_accept_then_close) as broker:
        subscriber = subscriber_for(broker)
        subscriber.stable_after_s = 0.0  # every connection counts as having lasted
        subscriber.start()
        _reconnect(subscriber, broker, 5)
        ceiling = subscriber._backoff.ceiling_s
        subscriber.stop()
    assert ceiling <= 2 / 64


def test_a_refused_subscription_names_its_filter_and_reason() -> None:
    def script(connection: Connection) -> None:
        connection.expect(CONNECT)
        connection.send(connack())
        subscribe = connection.expect(SUBSCRIBE)
        connection.send(suback(subscribe.packet_id, 0x01, 0x87))
        connection.read()

    with scripted_broker(script) as broker:
        subscriber = subscriber_for(broker)
        with pytest.raises(MqttError) as refused:
            subscriber.start()
    assert str(refused.value) == (
        f"mqtt://127.0.0.1:{broker.port}: the broker refused our subscription to"
        " 'v3/+/devices/+/up': Not authorized (0x87)"
    )


def test_a_session_taken_over_is_named_as_such(caplog: pytest.LogCaptureFixture) -> None:
    def script(connection: Connection) -> None:
        accept_and_subscribe(connection)
        connection.send(disconnect(0x8E))
        connection.read()

    def idle(connection: Connection) -> None:
        accept_and_subscribe(connection, session_present=True)
        connection.read()

    with scripted_broker(script, idle) as broker:
        subscriber = subscriber_for(broker, client_id="ingest-0")
        subscriber.start()
        _reconnect(subscriber, broker, 2)
        subscriber.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith(
        "MQTT CONNECTION FAILED: another client connected with our client id 'ingest-0' and"
        " took our session over (Session taken over (0x8E)): two ingest workers share one"
        " client id (mqtt.client_id), or someone else logs in as ingest; trying again in"
    )


def test_retained_readings_are_acknowledged_but_not_taken_registry_records_are() -> None:
    service = IngestService(Settings())
    prefix = service.settings.mqtt.topic_prefix
    batch = [
        RawMessage(f"{prefix}/air_quality/aq-1/reading", b"{}", 1, 1, 1, retained=True),
        RawMessage(f"{prefix}/registry/aq-1", b"{}", 1, 2, 1, retained=True),
        RawMessage(f"{prefix}/air_quality/aq-1/reading", b"{}", 1, 3, 1),
        RawMessage("v3/app@t/devices/d/up", b"{}", 1, 4, 1, retained=True),
    ]
    assert [m.mid for m in service._ours(batch)] == [2, 3]
    assert service.stats.retained_skipped == 2
