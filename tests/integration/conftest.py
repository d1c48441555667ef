"""Fixtures for integration tests that need the registry enforced."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from smartplace.accounts import simulator_client_id
from smartplace.config import InfluxSettings, IngestSettings, Settings
from smartplace.devices.provisioning import announce
from smartplace.influx import InfluxClient
from smartplace.ingest.stats import IngestStats, stats_line
from smartplace.publisher import Publisher
from smartplace.schemas.reasons import RejectReason
from smartplace.simulator import modes
from smartplace.simulator.faults import FaultRates
from smartplace.simulator.fleet import Fleet, load_fleet
from smartplace.simulator.traffic import Traffic
from smartplace.stack import InfluxdServer, MosquittoServer


@pytest.fixture
def registered_settings(settings: Settings) -> Settings:
    """The test's settings with unregistered devices refused, as in production."""
    ingest = settings.ingest.model_copy(update={"require_registered_devices": True})
    return settings.model_copy(update={"ingest": ingest})


SIMULATED_DAYS = 8
"""A week, and the week before's last day (for "this week against last")."""


@dataclass
class SimulatedTown:
    """Eight days of the default fleet (with a few faults), through the real broker and
    ingest into the real influxd, and the simulator's record of every reading sent."""

    settings: Settings
    fleet: Fleet
    records: list[dict[str, Any]]

    def site_of(self) -> dict[str, str]:
        return {device.device_id: device.site.name for device in self.fleet.members()}


@pytest.fixture(scope="session")
def simulated_town(
    mosquitto: MosquittoServer, influxd: InfluxdServer, tmp_path_factory: pytest.TempPathFactory
) -> SimulatedTown:
    from smartplace.stack.mosquitto import provisioned_mqtt
    from tests.conftest import RunningIngest

    mqtt = provisioned_mqtt(mosquitto, "town")
    settings = Settings(
        mqtt=mqtt,
        influx=InfluxSettings(url=influxd.url, database=f"town_{mqtt.client_id[-10:]}"),
        ingest=IngestSettings(
            batch_max_wait_s=0.05,
            require_registered_devices=False,
            http_port=0,
            stats_interval_s=0.5,
            device_health_interval_s=0.5,
            max_age_s=(SIMULATED_DAYS + 1) * 86_400.0,
            spool_dir=tmp_path_factory.mktemp("town-spool"),
        ),
    )
    started_ns = time.time_ns()
    ingest = RunningIngest(settings)
    ingest.start()
    fleet = load_fleet().model_copy(
        update={"faults": FaultRates(malformed=0.002, out_of_range=0.002, spike=0.002)}
    )
    # Registered devices, as in a real town: ingest learns their sites and places from this.
    announce(settings, [device.record() for device in fleet.members()])
    traffic = Traffic(fleet, mqtt.topic_prefix, array_max=60)
    publisher = Publisher(mqtt, simulator_client_id(mqtt), mqtt.simulator_account())
    publisher.start()
    oracle = io.BytesIO()
    try:
        sender = modes.Sender(lambda _message: publisher, oracle)
        modes.backfill(traffic, sender, threading.Event(), days=SIMULATED_DAYS)
    finally:
        publisher.stop()
    ingest.wait_for_received(sender.summary.messages + len(fleet.members()), timeout_s=300)
    time.sleep(1.5)  # a few more ingest_stats points, for rates
    ingest.close()
    # The worker's counters a minute before it started, all zero, as a longer-running
    # ingest would have written: rates are differences between 1-minute buckets, and a run
    # this short can fall within one clock minute. Every reject reason is there, at 0, as
    # the first reject of each kind makes it appear.
    zero = IngestStats()
    zero.rejected_by_reason.update({reason.value: 0 for reason in RejectReason})
    with InfluxClient(settings.influx) as influx:
        baseline = stats_line(mqtt.client_id, zero, 0, started_ns - 60 * 10**9)
        influx.write([baseline], settings.influx.raw_retention_policy)
    records = [orjson.loads(line) for line in oracle.getvalue().splitlines()]
    return SimulatedTown(settings, fleet, records)
