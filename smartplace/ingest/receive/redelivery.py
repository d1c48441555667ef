"""Recognising the broker's redeliveries, so a reading is counted once however often it came.

After a reconnect (or our own crash) the broker sends again every QoS 1 message
it saw no acknowledgement for, with the DUP flag set; some of those we had
already spooled. A redelivered message identical to one seen recently is
dropped before decoding. Identical messages *without* the flag are left alone:
a counter that sends the same untimestamped payload each minute means it.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence

from smartplace.ingest.receive.message import RawMessage

DEFAULT_REMEMBERED = 50_000
"""Messages remembered: more than the broker can have in flight to us (the receive maximum)
plus what it may resend after restoring a persistence file up to one autosave old."""


def message_digest(message: RawMessage) -> bytes:
    return hashlib.blake2b(
        message.topic.encode("utf-8", "surrogateescape") + b"\0" + message.payload,
        digest_size=16,
    ).digest()


class RecentMessages:
    def __init__(self, remembered: int = DEFAULT_REMEMBERED) -> None:
        self._order: deque[bytes] = deque()
        self._seen: set[bytes] = set()
        self.remembered = remembered

    def drop_redelivered(self, messages: Sequence[RawMessage]) -> tuple[list[RawMessage], int]:
        """The messages that are new, and how many were redeliveries of ones already seen."""
        fresh: list[RawMessage] = []
        for message in messages:
            digest = message_digest(message)
            if message.redelivered and digest in self._seen:
                continue
            fresh.append(message)
            if digest not in self._seen:
                self._seen.add(digest)
                self._order.append(digest)
        while len(self._order) > self.remembered:
            self._seen.discard(self._order.popleft())
        return fresh, len(messages) - len(fresh)
