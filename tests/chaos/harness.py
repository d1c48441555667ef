"""What the chaos suite needs: a known stream, a publisher that paces it, ingest as a real
process (so SIGKILL means SIGKILL), a watch on its memory, and the expected database."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from smartplace.accounts import simulator_client_id
from smartplace.config import Settings, settings_environment
from smartplace.influx import InfluxClient
from smartplace.publisher import Publisher
from smartplace.schemas import reading_topic
from smartplace.stack.process import PeakMemory
from smartplace.storage import aggregate_measurement

FIELDS = ("no2_ugm3", "pm25_ugm3", "pm10_ugm3")
WINDOWS_S = (60, 900, 3600, 86400)


@dataclass(frozen=True, slots=True)
class Reading:
    device_id: str
    ts_s: int
    values: tuple[float, float, float]

    def payload(self) -> bytes:
        return orjson.dumps({"ts": self.ts_s, **dict(zip(FIELDS, self.values, strict=True))})


def deterministic_stream(devices: int, per_device: int, step_s: int, end_s: int) -> list[Reading]:
    """``devices * per_device`` readings, each (device, ts) unique, interleaved as devices send.

    Values are saw-tooth ramps of different periods per field, rounded to 0.01:
    they never repeat six times running (a flatline) nor jump like a spike, so
    no quality check keeps any of them out of the aggregates.
    """
    start_s = end_s - per_device * step_s
    readings = []
    for i in range(per_device):
        for d in range(devices):
            no2 = 18.0 + d * 0.37 + (i % 97) * 0.11
            pm25 = 6.0 + d * 0.05 + (i % 61) * 0.07
            pm10 = pm25 + 4.0 + (i % 43) * 0.05
            readings.append(
                Reading(
                    f"chaos-{d:03d}",
                    start_s + i * step_s + d % step_s,
                    (round(no2, 2), round(pm25, 2), round(pm10, 2)),
                )
            )
    return readings


def expected_aggregates(
    readings: list[Reading], length_s: int
) -> dict[tuple[str, int], dict[str, float]]:
    """Offline recomputation of one window length: per (device, window start in s),
    each field's count, mean, min and max, by plain Python arithmetic."""
    groups: dict[tuple[str, int], list[Reading]] = defaultdict(list)
    for r in readings:
        groups[r.device_id, r.ts_s - r.ts_s % length_s].append(r)
    out = {}
    for key, members in groups.items():
        row: dict[str, float] = {}
        for k, name in enumerate(FIELDS):
            values = [m.values[k] for m in members]
            row[f"{name}_count"] = len(values)
            row[f"{name}_mean"] = math.fsum(values) / len(values)
            row[f"{name}_min"] = min(values)
            row[f"{name}_max"] = max(values)
        out[key] = row
    return out


class PacedPublisher:
    """Publishes the stream at QoS 1 at a steady rate on a thread, riding out broker restarts.

    ``acknowledged`` counts PUBACKs: a reading counts as published once the broker has it.
    """

    def __init__(self, settings: Settings, readings: list[Reading], rate_per_s: float) -> None:
        self.readings = readings
        self.rate_per_s = rate_per_s
        self._publisher = Publisher(
            settings.mqtt,
            simulator_client_id(settings.mqtt),
            settings.mqtt.simulator_account(),
            max_inflight=500,
        )
        self._prefix = settings.mqtt.topic_prefix
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="chaos-publisher", daemon=True)

    @property
    def acknowledged(self) -> int:
        return self._publisher.acknowledged

    def start(self) -> None:
        self._publisher.start()
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        for n, reading in enumerate(self.readings):
            due = started + n / self.rate_per_s
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            topic = reading_topic(self._prefix, "air_quality", reading.device_id)
            self._publisher.publish(topic, reading.payload())
            self.sent = n + 1

    def finish(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the publisher did not get through the stream"
        assert self._publisher.flush(timeout_s), (
            f"the broker acknowledged {self.acknowledged} of {len(self.readings)} publishes"
        )
        self._publisher.stop()


class IngestProcess:
    """``smartplace ingest`` as a child process, configured through the environment."""

    def __init__(self, settings: Settings, workdir: Path, http_port: int) -> None:
        self.http_port = http_port
        self.log_path = workdir / "ingest.log"
        ingest = settings.ingest.model_copy(
            update={
                "require_registered_devices": False,
                "spool_dir": workdir / "spool",
                "http_port": http_port,
            }
        )
        child = settings.model_copy(update={"stack_dir": workdir / "stack", "ingest": ingest})
        self.env = {**os.environ, **settings_environment(child)}
        self.process: subprocess.Popen[bytes] | None = None
        self._memory: PeakMemory | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "smartplace", "ingest"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._memory = PeakMemory(self.process.pid)
        self.wait_until(lambda m: "smartplace_ingest_mqtt_connected 1.0" in m, 60, "connected")

    def metrics(self) -> str:
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return ""

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}/readyz", timeout=2).is_success
        except httpx.HTTPError:
            return False

    def wait_until(self, condition: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            assert self.process.poll() is None, f"ingest exited\n{self.log_tail()}"
            if condition(self.metrics()):
                return
            time.sleep(0.1)
        raise AssertionError(f"ingest not {what} within {timeout_s} s\n{self.log_tail()}")

    @property
    def peak_rss_kib(self) -> int:
        return self._memory.peak_kib if self._memory else 0

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self, timeout_s: float = 60) -> int:
        """SIGTERM, as an orchestrator stops it: it drains, flushes, and exits."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Outcome:
    raw: dict[str, dict[int, tuple[float, ...]]] = field(default_factory=dict)
    raw_rows: int = 0
    """Raw rows returned, over every series: more than the distinct (device, time) pairs means
    a reading was stored twice (under another tag set)."""


def raw_count(influx: InfluxClient) -> int:
    try:
        rows = influx.query_rows('SELECT count("no2_ugm3") FROM "raw"."air_quality"')
    except Exception:
        return -1
    return int(rows[0]["count"]) if rows else 0


def read_raw(influx: InfluxClient, devices: list[str]) -> Outcome:
    outcome = Outcome()
    for device in devices:
        rows = influx.query_rows(
            'SELECT "no2_ugm3", "pm25_ugm3", "pm10_ugm3" FROM "raw"."air_quality" '
            'WHERE "device_id" = $device GROUP BY *',
            params={"device": device},
        )
        outcome.raw_rows += len(rows)
        outcome.raw[device] = {
            row["time"] // 1_000_000_000: tuple(row[f] for f in FIELDS) for row in rows
        }
    return outcome


def read_aggregates(influx: InfluxClient, length_s: int) -> dict[tuple[str, int], dict[str, float]]:
    measurement = aggregate_measurement("air_quality", length_s)
    rows = influx.query_rows(f'SELECT * FROM "agg"."{measurement}" GROUP BY *')
    out = {}
    for row in rows:
        key = (row["device_id"], row["time"] // 1_000_000_000)
        assert key not in out, f"window {key} stored twice"
        out[key] = {
            f"{name}_{stat}": row[f"{name}_{stat}"]
            for name in FIELDS
            for stat in ("count", "mean", "min", "max")
        }
    return out


def assert_aggregates_exact(
    influx: InfluxClient, readings: list[Reading], leave_out: frozenset[str] = frozenset()
) -> None:
    """Every stored 1-minute to 1-day aggregate equals the offline recomputation from the
    stream (devices in ``leave_out`` not compared); each mismatch listed with its counts."""
    wrong = []
    for length_s in WINDOWS_S:
        expected = expected_aggregates(readings, length_s)
        stored = {
            key: row
            for key, row in read_aggregates(influx, length_s).items()
            if key[0] not in leave_out
        }
        assert stored.keys() == expected.keys(), f"{length_s} s windows differ"
        wrong += [
            (length_s, key, stored[key]["no2_ugm3_count"], row["no2_ugm3_count"])
            for key, row in expected.items()
            if stored[key] != pytest.approx(row, rel=1e-9)
        ]
    assert wrong == [], "\n".join(map(str, wrong))
