"""Grafana file provisioning: the data source, the dashboard provider and the alert rules.

Written under ``dashboards/provisioning/`` next to the dashboards' JSON, for
Grafana to mount (docker-compose.yml does). Secrets stay in the environment:
Grafana expands ``$VAR`` in provisioning files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from smartplace.dashboards.build import DASHBOARDS, FOLDER
from smartplace.dashboards.influxql import DATASOURCE_TYPE, DATASOURCE_UID

GRAFANA_INFLUX_USER = "grafana"
"""The read-only InfluxDB account deploy/influxdb/init.sh creates for Grafana."""
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"
"""Where docker-compose.yml mounts dashboards/ inside the Grafana container."""


@dataclass(frozen=True, slots=True)
class AlertRule:
    uid: str
    title: str
    query: str
    """InfluxQL; ``$timeFilter`` covers the last ``window_s`` seconds."""
    window_s: int
    reducer: str
    operator: str
    """gt or lt."""
    threshold: float
    summary: str
    for_duration: str = "0m"
    no_data_alerts: bool = False
    """Whether no data at all means trouble (a silent device does send none)."""


ALERT_RULES = (
    AlertRule(
        "smartplace-bin-full",
        "Bin over 80 % for 30 minutes",
        'SELECT min("fill_pct") FROM "raw"."bin" WHERE $timeFilter GROUP BY "device_id", "site"',
        # Every reading in 45 minutes over 80 %: at least 30 minutes over, for bins that
        # report every half hour (a 30-minute window might hold no reading at all).
        2700,
        "last",
        "gt",
        80,
        "Bin {{ $labels.device_id }} at {{ $labels.site }} has been over 80 % full for 30 minutes.",
    ),
    AlertRule(
        "smartplace-daqi-high",
        "Air quality index High or worse",
        'SELECT max("index") FROM "agg"."daqi_1h" WHERE $timeFilter GROUP BY "site"',
        3 * 3600,
        "last",
        "gt",
        6,
        "The air quality index at {{ $labels.site }} is High or worse (7 or more).",
    ),
    AlertRule(
        "smartplace-device-silent",
        "Device silent for over an hour",
        'SELECT count("qc_flags") FROM "raw"./^(air_quality|footfall|bin)$/ WHERE $timeFilter'
        ' GROUP BY "device_id"',
        3600,
        "last",
        "lt",
        1,
        "Nothing from {{ $labels.device_id }} for over an hour.",
        no_data_alerts=True,
    ),
    AlertRule(
        "smartplace-rejects-high",
        "Rejects over 5 % of readings (15 minutes)",
        'SELECT spread("rejected") * 100 / (spread("received") + 1) FROM "raw"."ingest_stats"'
        ' WHERE $timeFilter GROUP BY "worker"',
        900,
        "last",
        "gt",
        5,
        "Ingest worker {{ $labels.worker }} rejected over 5 % of what it received in 15 minutes.",
    ),
    AlertRule(
        "smartplace-spool-growing",
        "Spool growing for 10 minutes",
        'SELECT last("spool_bytes") - first("spool_bytes") FROM "raw"."ingest_stats"'
        ' WHERE $timeFilter GROUP BY "worker"',
        600,
        "last",
        "gt",
        0,
        "Ingest worker {{ $labels.worker }}'s spool grew for 10 minutes: is InfluxDB taking writes?",
        for_duration="10m",
    ),
)


def datasource() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "smartplace InfluxDB",
                "uid": DATASOURCE_UID,
                "type": DATASOURCE_TYPE,
                "access": "proxy",
                "url": "$SMARTPLACE_INFLUX__URL",
                "isDefault": True,
                # InfluxDB 1.x's read-only account that deploy/influxdb/init.sh creates: a
                # Grafana editor can query from Explore but never write or drop.
                "user": GRAFANA_INFLUX_USER,
                "jsonData": {"dbName": "smartplace", "httpMode": "POST"},
                "secureJsonData": {"password": "$INFLUXDB_GRAFANA_PASSWORD"},
                "editable": False,
            }
        ],
    }


def dashboard_provider() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "smartplace",
                "folder": FOLDER,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": DASHBOARDS_MOUNT},
            }
        ],
    }


def alert_rules() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": "smartplace",
                "folder": FOLDER,
                "interval": "1m",
                "rules": [_rule(rule) for rule in ALERT_RULES],
            }
        ],
    }


def _rule(rule: AlertRule) -> dict[str, Any]:
    query = {
        "refId": "A",
        "query": rule.query,
        "rawQuery": True,
        "resultFormat": "time_series",
        "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
    }
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": rule.window_s, "to": 0},
                "datasourceUid": DATASOURCE_UID,
                "model": query,
            },
            {
                "refId": "B",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "B",
                    "type": "reduce",
                    "expression": "A",
                    "reducer": rule.reducer,
                },
            },
            {
                "refId": "C",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "C",
                    "type": "threshold",
                    "expression": "B",
                    "conditions": [
                        {"evaluator": {"type": rule.operator, "params": [rule.threshold]}}
                    ],
                },
            },
        ],
        "noDataState": "Alerting" if rule.no_data_alerts else "OK",
        "execErrState": "Error",
        "for": rule.for_duration,
        "annotations": {"summary": rule.summary},
        "labels": {"team": "operations"},
    }


def dashboard_json(name: str) -> str:
    built = DASHBOARDS[name]().build()
    return JSONEncoder(sort_keys=True, indent=2).encode(built) + "\n"


def rendered_files() -> dict[str, str]:
    """Every generated file under dashboards/, by its path there."""
    files = {f"{name}.json": dashboard_json(name) for name in DASHBOARDS}
    for path, document in (
        ("provisioning/datasources/smartplace.yaml", datasource()),
        ("provisioning/dashboards/smartplace.yaml", dashboard_provider()),
        ("provisioning/alerting/smartplace.yaml", alert_rules()),
    ):
        header = "# Generated by 'smartplace dashboards build' from smartplace/dashboards/: edit there.\n"
        files[path] = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return files


def write_all(directory: Path) -> list[Path]:
    written = []
    for relative, text in rendered_files().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
