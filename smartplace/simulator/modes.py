"""How a fleet's traffic goes out: in real time (or faster), as a backfill, or at a set rate.

- real time: the simulated clock is the wall clock; with ``accelerate`` X and a
  duration D it covers the D * X seconds that end now, X times faster, so no
  reading is ever stamped in the future;
- backfill: the last DAYS days, an hour at a time, as fast as the broker takes
  them, each device's hour in array payloads (buffered devices do that);
- load: readings from the past week at ``rate`` readings per second, for benchmarks.

Every mode can write the oracle: each reading sent (or meant and lost to a
fault), as JSON lines, so a test can work out what the database should hold
without asking ingest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from smartplace.publisher import Publisher
from smartplace.simulator.traffic import Outgoing, Traffic

log = logging.getLogger(__name__)

HOUR_S = 3_600
BACKFILL_MARGIN_S = 600
"""A backfill stops short of DAYS by this much, so its oldest readings are still younger than
ingest's maximum age (default 7 days) when they arrive."""
FLUSH_EVERY = 20_000
"""Messages between waits for the broker's acknowledgements: bounds what is in flight."""

Progress = Callable[[int], None]


@dataclass
class Summary:
    messages: int = 0
    readings: int = 0
    """Readings sent (those a silence swallowed not counted; a duplicate counted once)."""


class Sender:
    """Publishes messages (with whichever account suits each device) and keeps the oracle."""

    def __init__(
        self,
        publishers: Callable[[Outgoing], Publisher],
        record: IO[bytes] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self._publisher_for = publishers
        self._record = record
        self._progress = progress
        self._used: dict[int, Publisher] = {}
        self.summary = Summary()

    def send(self, messages: list[Outgoing]) -> None:
        for message in messages:
            if self._record is not None:
                self._record.write(b"".join(orjson.dumps(r) + b"\n" for r in message.records))
            if not message.topic:
                continue  # a reading lost to a fault: recorded, never sent
            publisher = self._publisher_for(message)
            self._used[id(publisher)] = publisher
            publisher.publish(message.topic, message.payload)
            self.summary.messages += 1
            self.summary.readings += len(message.records)
            if self.summary.messages % FLUSH_EVERY == 0:
                self.flush()
        if self._progress is not None:
            self._progress(sum(len(m.records) for m in messages))

    def flush(self, timeout_s: float = 120.0) -> None:
        for publisher in self._used.values():
            if not publisher.flush(timeout_s):
                raise TimeoutError("the broker did not acknowledge every publish in time")
        if self._record is not None:
            self._record.flush()


def real_time(
    traffic: Traffic,
    sender: Sender,
    stop: threading.Event,
    duration_s: float | None,
    accelerate: float = 1.0,
    step_s: float = 0.5,
) -> None:
    wall_start = time.time()
    span_s = (duration_s or 0.0) * accelerate
    sim_start = wall_start - span_s if accelerate != 1.0 else wall_start
    sent_until = int(sim_start)
    while not stop.is_set():
        elapsed = time.time() - wall_start
        sim_now = int(sim_start + elapsed * accelerate)
        if accelerate != 1.0:
            sim_now = min(sim_now, int(wall_start))
        sender.send(traffic.between(sent_until, sim_now))
        sent_until = sim_now
        if duration_s is not None and elapsed >= duration_s:
            break
        stop.wait(step_s)
    sender.send(traffic.flush())
    sender.flush()


def backfill_hours(days: float, now_s: int | None = None) -> Iterator[tuple[int, int]]:
    """[start, end) of each hour (the first and last partial) of a backfill ending now."""
    end = int(now_s if now_s is not None else time.time())
    start = end - int(days * 86_400) + BACKFILL_MARGIN_S
    while start < end:
        step_end = min(end, (start // HOUR_S + 1) * HOUR_S)
        yield start, step_end
        start = step_end


def backfill(traffic: Traffic, sender: Sender, stop: threading.Event, days: float) -> None:
    for start, end in backfill_hours(days):
        if stop.is_set():
            break
        sender.send(traffic.between(start, end))
    sender.send(traffic.flush())
    sender.flush()


def load(
    traffic: Traffic,
    sender: Sender,
    stop: threading.Event,
    rate: float,
    duration_s: float | None,
) -> None:
    """Readings from the past week, hour by hour, paced to ``rate`` readings per second."""
    started = time.monotonic()
    readings = 0
    for start, end in backfill_hours(6.0):
        if stop.is_set():
            break
        messages = traffic.between(start, end)
        for first in range(0, len(messages), 50):
            chunk = messages[first : first + 50]
            sender.send(chunk)
            readings += sum(len(m.records) for m in chunk)
            ahead = readings / rate - (time.monotonic() - started)
            if ahead > 0 and stop.wait(ahead):
                break
            if duration_s is not None and time.monotonic() - started >= duration_s:
                sender.flush()
                return
    sender.flush()


def open_record(path: Path | None) -> IO[bytes] | None:
    return path.open("wb") if path is not None else None
