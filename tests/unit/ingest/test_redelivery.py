"""Broker redeliveries are dropped once; a device's own repeats are not."""

from __future__ import annotations

from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.redelivery import RecentMessages


def msg(n: int, redelivered: bool = False) -> RawMessage:
    return RawMessage(
        "sp/footfall/ff-1/reading", b'{"count_in": %d}' % n, 0, redelivered=redelivered
    )


def test_a_redelivery_of_a_seen_message_is_dropped() -> None:
    recent = RecentMessages()
    assert recent.drop_redelivered([msg(1), msg(2)]) == ([msg(1), msg(2)], 0)
    assert recent.drop_redelivered([msg(2, True), msg(3, True)]) == ([msg(3, True)], 1)


def test_an_identical_message_without_the_dup_flag_is_the_device_speaking_again() -> None:
    recent = RecentMessages()
    recent.drop_redelivered([msg(0)])
    assert recent.drop_redelivered([msg(0)]) == ([msg(0)], 0)


def test_memory_is_bounded_by_the_messages_remembered() -> None:
    recent = RecentMessages(remembered=3)
    recent.drop_redelivered([msg(n) for n in range(10)])
    assert len(recent._seen) == 3
    assert recent.drop_redelivered([msg(0, True)]) == ([msg(0, True)], 0)  # forgotten
    assert recent.drop_redelivered([msg(9, True)]) == ([], 1)
