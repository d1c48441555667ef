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
import time
from typing import Any

import pytest
import yaml

from smartplace.dashboards.provisioning import rendered_files
from smartplace.influx import InfluxClient
from tests.integration.conftest import SimulatedTown

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
PEOPLE_IN_WEEKS = "People in: the last 24 h against the same 24 h in each of the 4 weeks before"


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


QUIET_TARGETS = {
    ("bins.json", "Collection list, soonest full first", "C"): "fire alarms: the town raises none",
    ("bins.json", "Collection list, soonest full first", "D"): "tilts: the town raises none",
    **{
        ("footfall.json", PEOPLE_IN_WEEKS, ref): "the town is 8 days old: no week 2-4 before"
        for ref in "CDE"
    },
}
"""Targets that may return nothing from the simulated town (test_dashboard_answers.py gives
each known data and checks its exact answer)."""


@pytest.mark.parametrize(("name", "board"), dashboards(), ids=[n for n, _ in dashboards()])
def test_every_panel_query_returns_data(
    simulated_town: SimulatedTown, name: str, board: dict[str, Any]
) -> None:
    now = int(time.time()) + 60
    with InfluxClient(simulated_town.settings.influx) as influx:
        checked = 0
        for variables in variable_values(influx, board):
            for panel in board["panels"]:
                for target in panel.get("targets", []):
                    # Grafana's $__interval is at least the panel's min interval: the finest
                    # (and so the dearest) bucket the panel can ask for.
                    interval = panel.get("interval", "1s")
                    query = expand(target["query"], panel_range(panel, now), variables, interval)
                    series = [
                        s for r in influx.query(query) for s in r.get("series", []) if s["values"]
                    ]
                    if (name, panel["title"], target["refId"]) not in QUIET_TARGETS:
                        assert series, f"{name} / {panel['title']}: no data from\n{query}"
                    checked += 1
        assert checked >= 2 * len([p for p in board["panels"] if p.get("targets")])


QUIET_WHEN_ALL_IS_WELL = {"smartplace-bin-fire", "smartplace-bin-tilt"}
"""Rules whose queries count alarms: the simulated town raises none (the replay test does)."""


def test_every_alert_rule_query_runs_and_returns_data(simulated_town: SimulatedTown) -> None:
    rules = yaml.safe_load(rendered_files()["provisioning/alerting/smartplace.yaml"])
    now = int(time.time()) + 60
    with InfluxClient(simulated_town.settings.influx) as influx:
        for rule in rules["groups"][0]["rules"]:
            source = rule["data"][0]
            # The town was simulated up to a few seconds ago; a rule's window (minutes for
            # the pipeline's) is read back over a day so that the query has data to prove.
            window = max(source["relativeTimeRange"]["from"], 86_400)
            query = expand(source["model"]["query"], (now - window, now), {}, "1m")
            series = [s for r in influx.query(query) for s in r.get("series", []) if s["values"]]
            if rule["uid"] not in QUIET_WHEN_ALL_IS_WELL:
                assert series, f"alert {rule['title']}: no data from\n{query}"


def test_show_tag_values_reads_the_measurement_in_every_policy(influx: InfluxClient) -> None:
    """Seen on 1.6.7: the policy in FROM does not scope SHOW TAG VALUES (the index is the
    database's). The variables and the feeds' site lists stay right because no measurement
    name is written to both policies (compat.py holds every such query to that)."""
    influx.ensure_storage()
    now_ns = time.time_ns()
    influx.write([f"probe,site=in-agg v=1 {now_ns}"], "agg")
    influx.write([f"probe,site=in-raw v=1 {now_ns}"], "raw")
    agg = influx.query_rows('SHOW TAG VALUES FROM "agg"."probe" WITH KEY = "site"')
    raw = influx.query_rows('SHOW TAG VALUES FROM "raw"."probe" WITH KEY = "site"')
    assert [row["value"] for row in agg] == ["in-agg", "in-raw"]
    assert [row["value"] for row in raw] == ["in-agg", "in-raw"]
