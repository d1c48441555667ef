"""Every dashboard, variable, alert and feeds query keeps the InfluxQL rules the shipped database honours.

docker-compose.yml ships InfluxDB 1.11, the tests run 1.6.7: the rules in
smartplace/dashboards/compat.py are what the two share and what the stack's
init and read-only accounts allow. A query that broke one would work in the
tests and fail (or read the wrong policy) on the shipped stack.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from smartplace.config import InfluxSettings
from smartplace.dashboards.compat import created_retention_policies, violations
from smartplace.dashboards.provisioning import rendered_files
from smartplace.feeds.datasets import DATASETS
from smartplace.feeds.store import FeedStore, Segment

ROOT = Path(__file__).resolve().parents[2]
POLICIES = created_retention_policies((ROOT / "deploy/influxdb/init.sh").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


class RecordingInflux:
    """Stands in for InfluxClient to collect the feeds' statements (no database is asked)."""

    def __init__(self) -> None:
        self.settings = InfluxSettings()
        self.statements: list[str] = []

    def query_rows(self, statement: str, *_: Any, **__: Any) -> list[dict[str, Any]]:
        self.statements.append(statement)
        return [{"time": 0}] if " OFFSET " in statement else []


def provisioned_queries() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name, text in rendered_files().items():
        if name.endswith(".json"):
            board = json.loads(text)
            for panel in board["panels"]:
                for target in panel.get("targets", []):
                    found.append((f"{name} / {panel['title']}", target["query"]))
            for variable in board.get("templating", {}).get("list", []):
                if variable.get("type") == "query":
                    found.append((f"{name} / ${variable['name']}", variable["query"]))
    alerting = yaml.safe_load(rendered_files()["provisioning/alerting/smartplace.yaml"])
    for group in alerting["groups"]:
        for rule in group["rules"]:
            for source in rule["data"]:
                if source["datasourceUid"] != "__expr__":
                    found.append((f"alert {rule['title']}", source["model"]["query"]))
    return found


def feeds_queries() -> list[tuple[str, str]]:
    influx = RecordingInflux()
    store = FeedStore(influx)  # type: ignore[arg-type]
    for name, dataset in DATASETS.items():
        store.sites(dataset)
        store.latest_rows(dataset)
        store.latest_ns(dataset, ["a"])
        store.count(dataset, "a", 0, 10**18)
        store.counts(dataset, 0, 10**18)
        store.nth_time(dataset, "a", 0, 10**18, 1)
        list(store.rows(dataset, Segment("a", 0, 10**18)))
        del name
    store.places()
    return [(f"feeds #{i}", s) for i, s in enumerate(dict.fromkeys(influx.statements))]


QUERIES = provisioned_queries() + feeds_queries()


def test_compose_ships_the_1x_line_the_tests_run() -> None:
    image = COMPOSE["services"]["influxdb"]["image"]
    assert re.fullmatch(r"influxdb:1\.(\d+)\.\d+", image), image
    assert {"raw", "agg"} == POLICIES
    defaults = InfluxSettings()
    assert {defaults.raw_retention_policy, defaults.agg_retention_policy} == POLICIES


def test_the_queries_collected_cover_every_source() -> None:
    places = {where.split(" / ")[0].split(" #")[0] for where, _ in QUERIES}
    assert {"overview.json", "air-quality.json", "bins.json", "devices.json"} <= places
    assert "feeds" in places
    assert any(where.startswith("alert ") for where, _ in QUERIES)
    assert len([q for w, q in QUERIES if w.startswith("feeds")]) >= 8


@pytest.mark.parametrize(("where", "query"), QUERIES, ids=[w for w, _ in QUERIES])
def test_every_query_keeps_the_rules(where: str, query: str) -> None:
    assert violations(query, POLICIES) == [], f"{where}: {query}"


@pytest.mark.parametrize(
    ("query", "broken"),
    [
        ('SELECT last("x") FROM "bin" WHERE $timeFilter', "leans on the default"),
        ('SELECT last("x") FROM "autogen"."bin"', "no retention policy"),
        ('SELECT last("x") INTO "agg"."y" FROM "raw"."bin"', "writes or administers"),
        ('DROP MEASUREMENT "bin"', "not a read-only statement"),
        ('SHOW TAG VALUES FROM "agg"."daqi_1h"', "names no single key"),
        ('SHOW TAG VALUES FROM "agg"."bin" WITH KEY = "site"', "not a measurement of agg"),
        ('SHOW TAG VALUES FROM "raw"."bin_15m" WITH KEY = "site"', "not a measurement of raw"),
        ('SELECT exp("x") FROM "raw"."bin"', "exp() is not an InfluxQL 1.6 function"),
    ],
)
def test_a_query_that_breaks_a_rule_is_caught(query: str, broken: str) -> None:
    assert any(broken in v for v in violations(query, POLICIES)), violations(query, POLICIES)


def test_words_inside_a_regex_are_not_statements() -> None:
    assert violations('SELECT last("x") FROM "raw"./^(drop|set)$/', POLICIES) == []
