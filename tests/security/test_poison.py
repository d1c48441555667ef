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

import shutil
import time
from collections.abc import Callable, Iterator
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


def maximal_payloads(settings: Settings, start_s: int) -> tuple[list[tuple[str, bytes]], int, int]:
    """The largest legal payloads of every path, and over-limit ones as an attacker sends
    them, each at the payload size limit where it can be; how many readings they hold, and
    how many rejects they earn."""
    prefix, size = settings.mqtt.topic_prefix, settings.ingest.max_payload_bytes
    limit = settings.ingest.max_readings_per_payload
    fields = {"pm25_ugm3": 5.0, "pm10_ugm3": 9.0, "no2_ugm3": 20.0, "o3_ugm3": 40.0}
    messages: list[tuple[str, bytes]] = []
    readings = rejects = 0
    for n in range(100):  # a native array at the readings limit, at the size limit
        body = [{"ts": start_s + i, **fields} for i in range(limit)]
        messages.append((f"{prefix}/air_quality/aq-1{n:03d}/reading", padded(body, size)))
        readings += limit
    for n in range(100):  # the same with as few bytes a reading as can be
        body = [{"ts": start_s + i, "pm25_ugm3": 5} for i in range(limit)]
        messages.append((f"{prefix}/air_quality/aq-2{n:03d}/reading", orjson.dumps(body)))
        readings += limit
    for n in range(100):  # a SenML pack at the readings limit, at the size limit
        pack = [{"bt": start_s, "bu": "ug/m3", "n": "pm25", "v": 5}]
        pack += [{"n": "pm25", "t": i, "v": 5} for i in range(1, limit)]
        messages.append((f"{prefix}/air_quality/aq-3{n:03d}/senml", padded(pack, size)))
        readings += limit
    over = [{"bt": start_s, "bu": "ug/m3", "n": "pm25", "v": 5}]
    while len(orjson.dumps(over)) < size - 40:
        over.append({"n": "pm25", "t": len(over), "v": 5})
    for n in range(100):  # SenML packs of ten thousand records: refused, batch_too_long
        messages.append((f"{prefix}/air_quality/aq-4{n:03d}/senml", orjson.dumps(over)))
        rejects += 1
    item = "[" * 1022 + "]" * 1022  # in the array: 1,023 levels, the deepest orjson reads
    items = (size - 2) // (len(item) + 1)
    deep = ("[" + ",".join([item] * items) + "]").encode()
    for n in range(25):  # arrays of the deepest legal items: each item refused, wrong_shape
        messages.append((f"{prefix}/air_quality/aq-5{n:03d}/reading", deep))
        rejects += items
    return messages, readings, rejects


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

    def landed() -> tuple[int, int]:
        counts = []
        for query in (
            'SELECT count("pm25_ugm3") FROM "raw"."air_quality"',
            'SELECT count("detail") FROM "raw"."ingest_rejects"',
        ):
            rows = influx.query_rows(query)
            counts.append(int(rows[0]["count"]) if rows else 0)
        return counts[0], counts[1]

    deadline = time.monotonic() + 300
    while landed() != (readings, rejects):
        assert ingest.process is not None
        assert ingest.process.poll() is None, ingest.log_tail()
        assert time.monotonic() < deadline, f"{landed()} landed\n{ingest.log_tail()}"
        time.sleep(0.5)
    assert ingest.terminate() == 0, ingest.log_tail()
    peak_mib = ingest.peak_rss_kib / 1024
    print(
        f"{len(messages)} messages, {readings} readings, {rejects} rejects: peak {peak_mib:.0f} MiB"
    )
    assert landed() == (readings, rejects)
    assert 0 < peak_mib < PEAK_RSS_BOUND_MIB
