"""Bytes that no conforming broker sends, and inputs no payload file has, as an attacker
or a misbehaving broker would give them.

- A topic that is not UTF-8: mosquitto refuses one, but the wire decodes a topic with
  surrogateescape (so that the spool keeps it byte for byte), and a broker that does not
  check hands it on. Its reject used to hold lone surrogates, which made the write of its
  whole batch raise UnicodeEncodeError outside the pipeline's isolation: the writer thread
  died, and every restart replayed the record into the same death.
- ``smartplace validate`` used to read its whole input (``/dev/zero``: MemoryError) and
  print a traceback for a topic that is not UTF-8.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from smartplace.config import IngestSettings, Settings
from smartplace.influx import InfluxClient
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.spool import Spool
from smartplace.stack import free_port
from tests.chaos.harness import IngestProcess

from .test_poison import good, publish, stored_readings, stored_rejects, wait_for

pytestmark = [pytest.mark.security]

BAD_TOPIC = b"smartplace/air_quality/aq-0001/reading\xff".decode("utf-8", "surrogateescape")
"""As ingest/receive/mqtt_wire.py reads a topic whose last byte is not UTF-8."""


@pytest.mark.integration
def test_a_topic_that_is_not_utf8_is_stored_as_its_reject(
    settings: Settings, influx: InfluxClient
) -> None:
    pipeline = Pipeline(
        settings.model_copy(update={"ingest": IngestSettings(require_registered_devices=False)})
    )
    message = RawMessage(BAD_TOPIC, b'{"pm25_ugm3": 5}', time.time_ns(), mid=1, qos=1)
    out = pipeline.process([message])
    # Written as the writer writes them: one body for the batch.
    influx.ensure_storage()  # as ingest does at its start
    influx.write(out.raw.lines, settings.influx.raw_retention_policy)
    stored = [(r["reason"], r["topic"]) for r in stored_rejects(influx)]
    assert stored == [("unknown_topic", "smartplace/air_quality/aq-0001/reading?")]


@pytest.mark.integration
def test_ingest_keeps_writing_after_a_spooled_topic_that_is_not_utf8(
    settings: Settings, influx: InfluxClient, tmp_path: Path
) -> None:
    # Spooled as the subscriber spools what such a broker sends; mosquitto would refuse it.
    topic = f"{settings.mqtt.topic_prefix}/air_quality/aq-0001/reading".encode() + b"\xff"
    bad = RawMessage(topic.decode("utf-8", "surrogateescape"), b'{"pm25_ugm3": 5}', time.time_ns())
    spool = Spool(tmp_path / "spool", settings.ingest.spool_max_bytes)
    spool.append([bad])
    spool.close()
    ingest = IngestProcess(settings, tmp_path, free_port())
    ingest.start()
    try:
        publish(settings, good(settings, int(time.time()) - 600, 10))
        wait_for("10 readings", lambda: stored_readings(influx) == 10, ingest)
        wait_for("the reject", lambda: bool(stored_rejects(influx)), ingest)
        assert [(r["reason"], r["topic"]) for r in stored_rejects(influx)] == [
            ("unknown_topic", bad.topic.encode("utf-8", "replace").decode())
        ]
        assert ingest.terminate() == 0, ingest.log_tail()
    finally:
        if ingest.process is not None and ingest.process.poll() is None:
            ingest.kill()


def _validate(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "smartplace", "validate", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_validate_reads_no_more_than_one_byte_past_the_limit(tmp_path: Path) -> None:
    done = _validate("--topic", "smartplace/air_quality/aq-0001/reading", "/dev/zero")
    assert done.returncode == 1, done.stderr
    assert b"Traceback" not in done.stderr
    verdict = orjson.loads(done.stdout)
    assert [(r["reason"], r["message"]) for r in verdict["rejects"]] == [
        ("payload_too_large", "262145 bytes, limit 262144")
    ]


def test_validate_refuses_a_topic_that_is_not_utf8_in_one_line(tmp_path: Path) -> None:
    payload = tmp_path / "reading.json"
    payload.write_bytes(b'{"pm25_ugm3": 5}')
    topic = BAD_TOPIC.encode("utf-8", "surrogateescape")
    done = subprocess.run(
        [
            sys.executable.encode(),
            b"-m",
            b"smartplace",
            b"validate",
            b"--topic",
            topic,
            str(payload).encode(),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == b""
    assert (
        done.stderr.decode().strip() == "error: --topic is not valid UTF-8, as every MQTT topic is"
    )


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_validate_refuses_an_arrival_time_no_timestamp_holds(tmp_path: Path, when: str) -> None:
    # It used to judge the payload an internal_error (OverflowError in the decoder's screen).
    payload = tmp_path / "reading.json"
    payload.write_bytes(b'{"pm25_ugm3": 5}')
    topic = "smartplace/air_quality/aq-0001/reading"
    done = _validate("--topic", topic, "--received-at", when, str(payload))
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.decode().strip() == f"error: --received-at '{when}' is outside 1970-2262"
