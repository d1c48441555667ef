"""Every dashboard panel's query and every alert rule's query, run as Grafana would run them.

No Grafana runs here, so the dashboards are proven on the data: eight simulated
days (with faults, so rejects exist) go through the real broker and ingest into
the real influxd; then each query from the generated JSON and alert YAML has
Grafana's macros and variables expanded and must parse and return a non-empty
series.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
import yaml

from smartplace.config import Settings
from smartplace.dashboards.provisioning import rendered_files
from smartplace.devices.provisioning import announce
from smartplace.influx import InfluxClient
from smartplace.publisher import Publisher
from smartplace.simulator import modes
from smartplace.simulator.faults import FaultRates
from smartplace.simulator.fleet import load_fleet
from smartplace.simulator.traffic import Traffic
from tests.conftest import RunningIngest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAYS = 8  # a week, and the week before's last day for "this week against last"
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


@pytest.fixture(scope="module")
def simulated_week(
    mosquitto: Any, influxd: Any, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    from smartplace.config import InfluxSettings, IngestSettings
    from tests.conftest import provisioned_mqtt

    mqtt = provisioned_mqtt(mosquitto, "dash")
    settings = Settings(
        mqtt=mqtt,
        influx=InfluxSettings(url=influxd.url, database=f"dash_{mqtt.client_id[-10:]}"),
        ingest=IngestSettings(
            batch_max_wait_s=0.05,
            require_registered_devices=False,
            http_port=0,
            stats_interval_s=0.5,
            max_age_s=(DAYS + 1) * 86_400.0,
            spool_dir=tmp_path_factory.mktemp("dash-spool"),
        ),
    )
    ingest = RunningIngest(settings)
    ingest.start()
    fleet = load_fleet().model_copy(
        update={"faults": FaultRates(malformed=0.002, out_of_range=0.002, spike=0.002)}
    )
    # Registered devices, as in a real town: ingest learns their sites and places from this.
    announce(settings, [device.record() for device in fleet.members()])
    traffic = Traffic(fleet, mqtt.topic_prefix, array_max=60)
    publisher = Publisher(mqtt, f"dash-{mqtt.client_id}", mqtt.simulator_account())
    publisher.start()
    try:
        sender = modes.Sender(lambda _message: publisher)
        modes.backfill(traffic, sender, threading.Event(), days=DAYS)
    finally:
        publisher.stop()
    ingest.wait_for_received(sender.summary.messages + len(fleet.members()), timeout_s=300)
    time.sleep(1.5)  # a few more ingest_stats points, for rates
    ingest.close()
    return settings


def expand(query: str, range_s: tuple[int, int], variables: dict[str, str], interval: str) -> str:
    """What Grafana's InfluxDB data source sends for a raw query."""
    start, end = range_s
    query = query.replace("$timeFilter", f"time >= {start * 1000}ms and time <= {end * 1000}ms")
    query = query.replace("$__interval", interval)
    for name, value in sorted(variables.items(), key=lambda item: -len(item[0])):
        query = query.replace(f"${name}", value)
    assert not re.search(r"\$\w", query), f"unexpanded macro in {query}"
    return query


def _seconds(text: str) -> int:
    return int(text[:-1]) * UNITS_S[text[-1]]


def panel_range(panel: dict[str, Any], now: int) -> tuple[int, int]:
    length = _seconds(panel.get("timeFrom") or "24h")
    shift = _seconds(panel["timeShift"]) if panel.get("timeShift") else 0
    return now - length - shift, now - shift


def variable_values(influx: InfluxClient, board: dict[str, Any]) -> list[dict[str, str]]:
    """Each variable as All (.*), then as the first value its own query offers."""
    listed = board.get("templating", {}).get("list", [])
    every = {v["name"]: v.get("allValue", ".*") for v in listed}
    first = dict(every)
    for variable in listed:
        rows = influx.query_rows(variable["query"])
        assert rows, f"variable {variable['name']} offers nothing: {variable['query']}"
        first[variable["name"]] = re.escape(str(rows[0]["value"]))
    return [every, first]


def dashboards() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, json.loads(text))
        for name, text in rendered_files().items()
        if name.endswith(".json")
    ]


@pytest.mark.parametrize(("name", "board"), dashboards(), ids=[n for n, _ in dashboards()])
def test_every_panel_query_returns_data(
    simulated_week: Settings, name: str, board: dict[str, Any]
) -> None:
    now = int(time.time()) + 60
    with InfluxClient(simulated_week.influx) as influx:
        checked = 0
        for variables in variable_values(influx, board):
            for panel in board["panels"]:
                for target in panel.get("targets", []):
                    query = expand(target["query"], panel_range(panel, now), variables, "1s")
                    series = [
                        s for r in influx.query(query) for s in r.get("series", []) if s["values"]
                    ]
                    assert series, f"{name} / {panel['title']}: no data from\n{query}"
                    checked += 1
        assert checked >= 2 * len([p for p in board["panels"] if p.get("targets")])


def test_every_alert_rule_query_returns_data(simulated_week: Settings) -> None:
    rules = yaml.safe_load(rendered_files()["provisioning/alerting/smartplace.yaml"])
    now = int(time.time()) + 60
    with InfluxClient(simulated_week.influx) as influx:
        for rule in rules["groups"][0]["rules"]:
            source = rule["data"][0]
            window = source["relativeTimeRange"]["from"]
            query = expand(source["model"]["query"], (now - window, now), {}, "1m")
            series = [s for r in influx.query(query) for s in r.get("series", []) if s["values"]]
            assert series, f"alert {rule['title']}: no data from\n{query}"
