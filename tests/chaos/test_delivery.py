"""Nothing lost: 50,000 readings through broker restarts, InfluxDB outages and SIGKILLed ingest.

Each case publishes the same deterministic stream at QoS 1 (50 devices x 1,000
readings, every (device, timestamp) unique) at about 700 readings/s while it
breaks one part, then stops ingest with SIGTERM and checks the database:

- raw points equal the published readings: count, per-device timestamp sets, values;
- no (device, timestamp) is stored twice;
- every 1 min, 15 min, 1 h and 1 day aggregate equals an offline recomputation;
- ingest's peak resident memory stayed under PEAK_RSS_BOUND_MIB.

Recovery time, per fault: from the moment the broken part is back (for ingest:
restarted) until ingest is ready again (/readyz) and every reading the broker
had acknowledged by then is in InfluxDB. Figures are printed
(run with -s to see them) for the issue's note.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smartplace.config import InfluxSettings, IngestSettings, Settings
from smartplace.influx import InfluxClient
from smartplace.stack import free_port
from smartplace.stack.mosquitto import provisioned_mqtt
from tests.chaos.conftest import ChaosStack
from tests.chaos.harness import (
    IngestProcess,
    PacedPublisher,
    assert_aggregates_exact,
    deterministic_stream,
    raw_count,
    read_raw,
)

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(900)]

DEVICES, PER_DEVICE, STEP_S = 50, 1_000, 3
RATE_PER_S = 700.0
PEAK_RSS_BOUND_MIB = 250
"""The bound the issue asks us to state: what ingest may hold resident, whatever fails."""


class Scenario:
    def __init__(self, stack: ChaosStack, workdir: Path, **ingest: object) -> None:
        mqtt = provisioned_mqtt(stack.mosquitto, "chaos")
        unique = mqtt.topic_prefix.removeprefix("chaos-")
        self.settings = Settings(
            mqtt=mqtt,
            influx=InfluxSettings(url=stack.influxd.url, database=f"chaos_{unique}"),
            ingest=IngestSettings(write_retry_max_s=2.0, **ingest),  # type: ignore[arg-type]
        )
        self.stack = stack
        self.readings = deterministic_stream(DEVICES, PER_DEVICE, STEP_S, int(time.time()) - 60)
        self.ingest = IngestProcess(self.settings, workdir, free_port())
        self.publisher = PacedPublisher(self.settings, self.readings, RATE_PER_S)
        self.influx = InfluxClient(self.settings.influx)
        self.recoveries: list[float] = []
        self.peak_rss_kib = 0

    def start(self) -> None:
        self.ingest.start()
        self.publisher.start()

    def wait_for_published(self, fraction: float) -> None:
        target = int(len(self.readings) * fraction)
        deadline = time.monotonic() + 300
        while self.publisher.acknowledged < target:
            assert time.monotonic() < deadline, "the stream stalled"
            time.sleep(0.05)

    def measure_recovery(self, back_at: float) -> None:
        """Wait until ingest is ready again (/readyz: broker connected, InfluxDB writable, spool
        not full) and everything the broker acknowledged by the time the part came back is in
        InfluxDB."""
        target = self.publisher.acknowledged
        deadline = time.monotonic() + 240
        while raw_count(self.influx) < target or not self.ingest.ready():
            assert time.monotonic() < deadline, (
                f"{raw_count(self.influx)} of {target} readings in InfluxDB after 240 s\n"
                f"{self.ingest.log_tail()}"
            )
            time.sleep(0.1)
        self.recoveries.append(time.monotonic() - back_at)

    def finish_and_check(self) -> None:
        self.publisher.finish(timeout_s=120)
        deadline = time.monotonic() + 240
        while raw_count(self.influx) < len(self.readings) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert self.ingest.terminate() == 0, self.ingest.log_tail()
        self.peak_rss_kib = max(self.peak_rss_kib, self.ingest.peak_rss_kib)
        self._check_raw()
        self._check_aggregates()
        assert self.peak_rss_kib < PEAK_RSS_BOUND_MIB * 1024, self.peak_rss_kib

    def _check_raw(self) -> None:
        devices = sorted({r.device_id for r in self.readings})
        stored = read_raw(self.influx, devices)
        expected: dict[str, dict[int, tuple[float, ...]]] = {d: {} for d in devices}
        for r in self.readings:
            expected[r.device_id][r.ts_s] = r.values
        assert stored.raw_rows == len(self.readings), "a reading is missing or stored twice"
        for device in devices:
            assert stored.raw[device].keys() == expected[device].keys(), device
            assert stored.raw[device] == expected[device], device

    def _check_aggregates(self) -> None:
        assert_aggregates_exact(self.influx, self.readings)

    def report(self, case: str) -> None:
        recoveries = ", ".join(f"{s:.1f} s" for s in self.recoveries)
        print(
            f"\nCHAOS {case}: {len(self.readings)} readings; recovery {recoveries}; "
            f"peak RSS {self.peak_rss_kib / 1024:.0f} MiB"
        )

    def close(self) -> None:
        if self.ingest.process is not None and self.ingest.process.poll() is None:
            self.ingest.kill()
        self.influx.close()


ScenarioFactory = Callable[..., Scenario]


@pytest.fixture
def scenario_factory(chaos_stack: ChaosStack, tmp_path: Path) -> Iterator[ScenarioFactory]:
    made: list[Scenario] = []

    def make(**ingest: object) -> Scenario:
        scenario = Scenario(chaos_stack, tmp_path, **ingest)
        made.append(scenario)
        return scenario

    yield make
    for scenario in made:
        scenario.close()


def test_broker_restarted_three_times(
    chaos_stack: ChaosStack, scenario_factory: ScenarioFactory
) -> None:
    scenario = scenario_factory()
    scenario.start()
    for fraction in (0.2, 0.45, 0.7):
        scenario.wait_for_published(fraction)
        chaos_stack.mosquitto.stop()
        time.sleep(1.0)
        chaos_stack.mosquitto.start()
        scenario.measure_recovery(time.monotonic())
    scenario.finish_and_check()
    scenario.report("mosquitto restarted 3 times")
    assert len(scenario.recoveries) == 3


def test_influxd_down_for_30_seconds(
    chaos_stack: ChaosStack, scenario_factory: ScenarioFactory
) -> None:
    scenario = scenario_factory()
    scenario.start()
    scenario.wait_for_published(0.25)
    chaos_stack.influxd.stop()
    time.sleep(30)
    chaos_stack.influxd.start()
    scenario.measure_recovery(time.monotonic())
    scenario.finish_and_check()
    scenario.report("influxd down 30 s")


def test_ingest_killed_three_times(scenario_factory: ScenarioFactory) -> None:
    scenario = scenario_factory()
    scenario.start()
    for fraction in (0.2, 0.45, 0.7):
        scenario.wait_for_published(fraction)
        scenario.ingest.kill()
        scenario.peak_rss_kib = max(scenario.peak_rss_kib, scenario.ingest.peak_rss_kib)
        back_at = time.monotonic()
        scenario.ingest.start()
        scenario.measure_recovery(back_at)
    scenario.finish_and_check()
    scenario.report("ingest SIGKILLed 3 times")


def test_spool_fills_then_the_broker_holds_the_rest(
    chaos_stack: ChaosStack, scenario_factory: ScenarioFactory
) -> None:
    spool_limit = 1 << 20
    scenario = scenario_factory(spool_max_bytes=spool_limit)
    scenario.start()
    scenario.wait_for_published(0.2)
    chaos_stack.influxd.stop()
    ingest = scenario.ingest
    ingest.wait_until(lambda m: "smartplace_ingest_acknowledging 0.0" in m, 120, "holding back")
    held_at = scenario.publisher.acknowledged
    spooled_at_hold = _metric(ingest.metrics(), "smartplace_ingest_spooled_total")
    time.sleep(10)  # the broker holds what arrives meanwhile
    metrics = ingest.metrics()
    assert scenario.publisher.acknowledged > held_at + 1000, "the stream kept flowing to the broker"
    assert _metric(metrics, "smartplace_ingest_spooled_total") == spooled_at_hold, (
        "nothing more was spooled (or acknowledged) while full"
    )
    assert _metric(metrics, "smartplace_ingest_spool_bytes") <= spool_limit + 256 * 1024
    chaos_stack.influxd.start()
    scenario.measure_recovery(time.monotonic())
    ingest.wait_until(lambda m: "smartplace_ingest_acknowledging 1.0" in m, 60, "acknowledging")
    scenario.finish_and_check()
    scenario.report("spool full, broker held the backlog")


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")
