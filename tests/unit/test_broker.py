"""Reconnect delays: doubling to a ceiling, each drawn from its upper half, reset on connect."""

from __future__ import annotations

from smartplace.broker import RECONNECT_MAX_S, JitteredBackoff, make_client
from smartplace.config import MqttSettings


def test_delays_double_with_jitter_up_to_the_ceiling_and_reset() -> None:
    backoff = JitteredBackoff(make_client(MqttSettings(), "backoff-test", None))
    ceilings = [1, 2, 4, 8, 16, 30, 30]
    delays = [backoff.next_delay() for _ in ceilings]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= RECONNECT_MAX_S
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_two_clients_rarely_retry_in_step() -> None:
    a = JitteredBackoff(make_client(MqttSettings(), "a", None))
    b = JitteredBackoff(make_client(MqttSettings(), "b", None))
    assert [a.next_delay() for _ in range(5)] != [b.next_delay() for _ in range(5)]
