"""Poison messages, sent as a device with a screwdriver would, to ingest running as a process.

Each known poison (a SenML time that overflows, native items nested past what
orjson writes back, a refused item with a deeply nested unknown key) is
published between good readings, plain and retained. Ingest must keep
running, store the poison as a reject with its reason, store every good
reading exactly once (counted in InfluxDB), and after a SIGKILL replay its
spool without dying again. And with maximal legal payloads at the full
receive maximum, its peak memory stays under the stated bound.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from smartplace.accounts import simulator_client_id
from smartplace.config import Settings
from smartplace.influx import InfluxClient
from smartplace.publisher import Publisher
from smartplace.stack import free_port
from tests.chaos.harness import IngestProcess

pytestmark = [pytest.mark.security, pytest.mark.integration]

DEPTH = 1000
"""Nesting orjson reads (up to 1,024) but will not write back (past 255)."""
DEEP = "[" * DEPTH + "]" * DEPTH
POISONS = {  # name: (leaf, payload, reason)
    "senml_time_overflow": (
        "senml",
        b'[{"bt":1e303,"n":"pm25","u":"ug/m3","v":5}]',
        "bad_timestamp",
    ),
    "deep_native_item": ("reading", f"[{DEEP}]".encode(), "wrong_shape"),
    "deep_unknown_key": ("reading", f'[{{"pm25_ugm3":"x","z":{DEEP}}}]'.encode(), "wrong_type"),
    "deep_unknown_senml_key": (
        "senml",
        f'[{{"n":"nothing","u":"ug/m3","v":5,"z":{DEEP}}}]'.encode(),
        "unknown_measurement",
    ),
}
DEVICE = "aq-0001"
"""The device of the good readings."""


def good(settings: Settings, start_s: int, count: int) -> list[tuple[str, bytes]]:
    """``count`` good readings of one device, a second apart from ``start_s``."""
    topic = f"{settings.mqtt.topic_prefix}/air_quality/{DEVICE}/reading"
    return [(topic, orjson.dumps({"ts": start_s + i, "pm25_ugm3": 5.0})) for i in range(count)]


def publish(settings: Settings, messages: list[tuple[str, bytes]], retain: bool = False) -> None:
    with Publisher(
        settings.mqtt, simulator_client_id(settings.mqtt), settings.mqtt.simulator_account()
    ) as publisher:
        for topic, payload in messages:
            publisher.publish(topic, payload, retain=retain)
        assert publisher.flush(60), "the broker did not acknowledge every publish"


def stored_readings(influx: InfluxClient) -> int:
    rows = influx.query_rows(
        'SELECT count("pm25_ugm3") FROM "raw"."air_quality" WHERE "device_id" = $device',
        params={"device": DEVICE},
    )
    return int(rows[0]["count"]) if rows else 0


def stored_rejects(influx: InfluxClient) -> list[dict[str, Any]]:
    rows = influx.query_rows('SELECT * FROM "raw"."ingest_rejects" GROUP BY *')
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def wait_for(what: str, condition: Callable[[], bool], ingest: IngestProcess) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert ingest.process is not None
        assert ingest.process.poll() is None, f"ingest exited\n{ingest.log_tail()}"
        assert time.monotonic() < deadline, f"not {what} within 60 s\n{ingest.log_tail()}"
        time.sleep(0.1)


@pytest.fixture
def ingest(settings: Settings, tmp_path: Path) -> Iterator[IngestProcess]:
    process = IngestProcess(settings, tmp_path, free_port())
    process.start()
    yield process
    if process.process is not None and process.process.poll() is None:
        process.kill()


@pytest.mark.parametrize("retain", [False, True], ids=["plain", "retained"])
def test_each_poison_is_a_reject_and_ingest_keeps_running_through_restarts(
    settings: Settings, influx: InfluxClient, ingest: IngestProcess, tmp_path: Path, retain: bool
) -> None:
    prefix = settings.mqtt.topic_prefix
    # Each poison from a device of its own, so each reject is known by its topic.
    poisons = {
        f"{prefix}/air_quality/aq-{n + 101:04d}/{leaf}": (payload, reason)
        for n, (leaf, payload, reason) in enumerate(POISONS.values())
    }
    start = int(time.time()) - 600
    publish(settings, good(settings, start, 10))
    publish(settings, [(topic, payload) for topic, (payload, _) in poisons.items()], retain)
    publish(settings, good(settings, start + 10, 10))

    def poison_rejects() -> dict[str, list[tuple[str, str]]]:
        found: dict[str, list[tuple[str, str]]] = {topic: [] for topic in poisons}
        for reject in stored_rejects(influx):
            found[reject["topic"]].append((reject["reason"], reject["device_id"]))
        return found

    def device_of(topic: str) -> str:
        return topic.split("/")[2]

    expected = {topic: [(reason, device_of(topic))] for topic, (_, reason) in poisons.items()}
    wait_for("20 readings", lambda: stored_readings(influx) == 20, ingest)
    wait_for("the rejects", lambda: all(poison_rejects().values()), ingest)
    assert poison_rejects() == expected
    assert ingest.process is not None
    assert ingest.process.poll() is None

    # Killed before it may have committed: the restart replays the poisons from the spool.
    ingest.kill()
    ingest.start()
    publish(settings, good(settings, start + 20, 10))
    wait_for("30 readings after the restart", lambda: stored_readings(influx) == 30, ingest)
    if retain:
        # Wiped spool: only the broker's retained copies are left to meet the fresh ingest.
        assert ingest.terminate() == 0
        shutil.rmtree(tmp_path / "spool")
        ingest.start()
        publish(settings, good(settings, start + 30, 10))
        wait_for("40 readings after the wipe", lambda: stored_readings(influx) == 40, ingest)
    assert ingest.terminate() == 0, ingest.log_tail()
    if retain:
        publish(settings, [(topic, b"") for topic in poisons], retain=True)  # ingest away
    assert stored_readings(influx) == (40 if retain else 30)
    stored = poison_rejects()
    if retain:
        # A retained copy may be delivered again at a new subscription (Retain Handling is
        # the subscriber's choice): each is the same reject again, and never anything worse.
        assert {topic: sorted(set(found)) for topic, found in stored.items()} == expected
    else:
        assert stored == expected  # the replay rewrote the same points, it added none


PEAK_RSS_BOUND_MIB = 250
"""The stated bound (README, Performance): ingest's peak resident memory per worker."""


def padded(document: Any, size: int) -> bytes:
    """``document`` as JSON, padded with whitespace to exactly ``size`` bytes."""
    text = orjson.dumps(document)
    assert len(text) <= size
    return text + b" " * (size - len(text))


@dataclass(frozen=True)
class Shape:
    """One payload of the largest legal kind on one path, and what it earns."""

    leaf: str
    payload: bytes
    readings: int
    rejects: int


def maximal_shapes(settings: Settings, start_s: int) -> dict[str, Shape]:
    """The largest legal payloads of every path, and over-limit ones as an attacker sends
    them, each at the payload size limit where it can be (all but ``compact_native``)."""
    size = settings.ingest.max_payload_bytes
    limit = settings.ingest.max_readings_per_payload
    fields = {"pm25_ugm3": 5.0, "pm10_ugm3": 9.0, "no2_ugm3": 20.0, "o3_ugm3": 40.0}
    # a native array at the readings limit, at the size limit
    native = padded([{"ts": start_s + i, **fields} for i in range(limit)], size)
    # the same with as few bytes a reading as can be
    compact = orjson.dumps([{"ts": start_s + i, "pm25_ugm3": 5} for i in range(limit)])
    # a SenML pack at the readings limit, at the size limit
    pack = [{"bt": start_s, "bu": "ug/m3", "n": "pm25", "v": 5}]
    pack += [{"n": "pm25", "t": i, "v": 5} for i in range(1, limit)]
    # a SenML pack of ten thousand records: refused, batch_too_long
    over = [{"bt": start_s, "bu": "ug/m3", "n": "pm25", "v": 5}]
    while len(orjson.dumps(over)) < size - 40:
        over.append({"n": "pm25", "t": len(over), "v": 5})
    # an array of the deepest legal items: each item refused, wrong_shape
    item = "[" * 1022 + "]" * 1022  # in the array: 1,023 levels, the deepest orjson reads
    items = (size - 2) // (len(item) + 1)
    return {
        "native": Shape("reading", native, limit, 0),
        "compact_native": Shape("reading", compact, limit, 0),
        "senml": Shape("senml", padded(pack, size), limit, 0),
        "senml_too_long": Shape("senml", orjson.dumps(over), 0, 1),
        "deep_items": Shape("reading", ("[" + ",".join([item] * items) + "]").encode(), 0, items),
    }


def maximal_payloads(settings: Settings, start_s: int) -> tuple[list[tuple[str, bytes]], int, int]:
    """Each shape from devices of its own (100 of each, 25 of the deep items' arrays); how
    many readings they hold, and how many rejects they earn."""
    prefix = settings.mqtt.topic_prefix
    messages: list[tuple[str, bytes]] = []
    readings = rejects = 0
    for k, (shape, devices) in enumerate(
        zip(maximal_shapes(settings, start_s).values(), (100, 100, 100, 100, 25), strict=True)
    ):
        for n in range(devices):
            topic = f"{prefix}/air_quality/aq-{k + 1}{n:03d}/{shape.leaf}"
            messages.append((topic, shape.payload))
            readings += shape.readings
            rejects += shape.rejects
    return messages, readings, rejects


def landed(influx: InfluxClient) -> tuple[int, int]:
    """Readings and rejects stored in the test's database."""
    counts = []
    for query in (
        'SELECT count("pm25_ugm3") FROM "raw"."air_quality"',
        'SELECT count("detail") FROM "raw"."ingest_rejects"',
    ):
        rows = influx.query_rows(query)
        counts.append(int(rows[0]["count"]) if rows else 0)
    return counts[0], counts[1]


def wait_landed(influx: InfluxClient, ingest: IngestProcess, expected: tuple[int, int]) -> None:
    deadline = time.monotonic() + 240
    while landed(influx) != expected:
        assert ingest.process is not None
        assert ingest.process.poll() is None, ingest.log_tail()
        assert time.monotonic() < deadline, f"{landed(influx)} landed\n{ingest.log_tail()}"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "backlog",
    [False, True],
    ids=["live", "backlog"],
)
def test_peak_memory_stays_under_the_bound_with_maximal_payloads_at_the_receive_maximum(
    settings: Settings, influx: InfluxClient, ingest: IngestProcess, backlog: bool
) -> None:
    # live: published while ingest runs, as fast as the broker takes them. backlog: they
    # wait in ingest's session, and when it comes back the broker sends up to the Receive
    # Maximum (10,000 by default) at once.
    messages, readings, rejects = maximal_payloads(settings, int(time.time()) - 3600)
    if backlog:
        assert ingest.terminate() == 0
        publish(settings, messages)
        ingest.start()
    else:
        publish(settings, messages)

    wait_landed(influx, ingest, (readings, rejects))
    assert ingest.terminate() == 0, ingest.log_tail()
    peak_mib = ingest.peak_rss_kib / 1024
    print(
        f"{len(messages)} messages, {readings} readings, {rejects} rejects: peak {peak_mib:.0f} MiB"
    )
    assert landed(influx) == (readings, rejects)
    assert 0 < peak_mib < PEAK_RSS_BOUND_MIB


@pytest.mark.slow
@pytest.mark.parametrize("receive_maximum", [100, 2000])
def test_peak_memory_with_a_full_receive_maximum_of_maximal_payloads_does_not_depend_on_it(
    settings: Settings, influx: InfluxClient, tmp_path: Path, receive_maximum: int
) -> None:
    # Ingest's session holds exactly receive_maximum messages, each at the size limit, while
    # ingest is away; back, the broker may send them all at once, unacknowledged. Ingest reads
    # at most batch_max_bytes before it fsyncs and acknowledges, so its memory must not grow
    # with the receive maximum (the default 10,000 at 256 KiB, 2.5 GiB, is more than the test
    # broker queues for one client: README, Memory is bounded by batches).
    mqtt = settings.mqtt.model_copy(update={"receive_maximum": receive_maximum})
    settings = settings.model_copy(update={"mqtt": mqtt})
    size = settings.ingest.max_payload_bytes
    shapes = [
        shape
        for name, shape in maximal_shapes(settings, int(time.time()) - 3600).items()
        if name != "compact_native"
    ]
    assert all(size - 2 * 1024 < len(shape.payload) <= size for shape in shapes)
    backlog = list(zip(range(receive_maximum), itertools.cycle(shapes)))
    messages = [
        (f"{settings.mqtt.topic_prefix}/air_quality/aq-b{n:05d}/{shape.leaf}", shape.payload)
        for n, shape in backlog
    ]
    expected = (sum(s.readings for _, s in backlog), sum(s.rejects for _, s in backlog))
    ingest = IngestProcess(settings, tmp_path, free_port())
    ingest.start()  # makes its persistent session, then leaves it to queue
    try:
        assert ingest.terminate() == 0
        publish(settings, messages)
        ingest.start()
        wait_landed(influx, ingest, expected)
        assert ingest.terminate() == 0, ingest.log_tail()
    finally:
        if ingest.process is not None and ingest.process.poll() is None:
            ingest.kill()
    peak_mib = ingest.peak_rss_kib / 1024
    print(
        f"receive maximum {receive_maximum}: {len(messages)} messages of {size} bytes at most,"
        f" {expected[0]} readings, {expected[1]} rejects: peak {peak_mib:.1f} MiB"
    )
    assert "session_present=True" in ingest.log_path.read_text()
    assert landed(influx) == expected
    assert 0 < peak_mib < PEAK_RSS_BOUND_MIB
