"""Grafana file provisioning: the data source, the dashboard provider and the alert rules.

Written under ``dashboards/provisioning/`` next to the dashboards' JSON, for
Grafana to mount (docker-compose.yml does). Secrets stay in the environment:
Grafana expands ``$VAR`` in provisioning files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from smartplace.dashboards.build import DASHBOARDS, FOLDER, FOLDER_UID
from smartplace.dashboards.influxql import DATASOURCE_TYPE, DATASOURCE_UID
from smartplace.storage import AGG_POLICY, RAW_POLICY, in_policies

GRAFANA_INFLUX_USER = "grafana"
"""The read-only InfluxDB account deploy/influxdb/init.sh creates for Grafana."""
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"
"""Where docker-compose.yml mounts dashboards/ inside the Grafana container."""


TEAMS = {
    "air_quality": "Air quality",
    "waste": "Waste",
    "town_centre": "Town centre",
    "platform": "Platform",
}
"""The ``team`` label on every rule, which the notification policies route by."""


@dataclass(frozen=True, slots=True)
class AlertRule:
    uid: str
    title: str
    team: str
    query: str
    """InfluxQL; ``$timeFilter`` covers the last ``window_s`` seconds."""
    window_s: int
    reducer: str
    operator: str
    """gt or lt."""
    threshold: float
    summary: str
    for_duration: str = "0m"
    working_hours_only: bool = False
    """Whether it can wait for the morning: muted overnight (MUTE_OVERNIGHT), never lost."""
    no_data_state: str = "OK"
    """What no series at all means (Grafana: Alerting, NoData, OK or KeepLast)."""
    exec_err_state: str = "KeepLast"
    """What a failed query means: only the rules that watch the pipeline itself alert on it
    (an InfluxDB outage is theirs to report, not every rule's)."""


RULES_INTERVAL = "1m"
ALERT_RULES = (
    AlertRule(
        "smartplace-bin-full",
        "Bin nearly full (over 80 % for 30 minutes)",
        "waste",
        'SELECT last("fill_pct") FROM "raw"."bin" WHERE $timeFilter GROUP BY "device_id", "site"',
        # Bins report every half hour: two hours' window always holds the latest reading,
        # and the 30 minutes are the rule's own 'for', counted by Grafana.
        2 * 3600,
        "last",
        "gt",
        80,
        "Bin {{ $labels.device_id }} at {{ $labels.site }} has been over 80 % full for 30 minutes.",
        for_duration="30m",
        working_hours_only=True,  # no crew empties bins at night
    ),
    AlertRule(
        "smartplace-bin-fire",
        "Bin fire alarm",
        "waste",
        'SELECT count("fire_alarm") FROM "raw"."bin" WHERE $timeFilter AND "fire_alarm" = true'
        ' GROUP BY "device_id", "site"',
        3600,
        "last",
        "gt",
        0,
        "Bin {{ $labels.device_id }} at {{ $labels.site }} raised its fire alarm: send someone now.",
    ),
    AlertRule(
        "smartplace-bin-tilt",
        "Bin tilted or knocked over",
        "waste",
        'SELECT count("tilt") FROM "raw"."bin" WHERE $timeFilter AND "tilt" = true'
        ' GROUP BY "device_id", "site"',
        3600,
        "last",
        "gt",
        0,
        "Bin {{ $labels.device_id }} at {{ $labels.site }} reports it is tilted.",
        working_hours_only=True,
    ),
    AlertRule(
        "smartplace-daqi-high",
        "Air quality index High or worse",
        "air_quality",
        'SELECT last("index") FROM "agg"."daqi_1h" WHERE $timeFilter GROUP BY "site"',
        3 * 3600,
        "last",
        "gt",
        6,
        "The air quality index at {{ $labels.site }} is High or worse (7 or more).",
    ),
    AlertRule(
        "smartplace-device-silent",
        "Device silent for over an hour",
        "platform",
        # device_health has a series for every registered device, silent or not; a dead
        # ingest writes none, which is the ingest-stopped rule's to report.
        'SELECT last("silent_s") FROM "raw"."device_health" WHERE $timeFilter'
        ' AND "status" = \'active\' GROUP BY "device_id", "kind", "site"',
        600,
        "last",
        "gt",
        3600,
        "Nothing from {{ $labels.device_id }} ({{ $labels.kind }}, {{ $labels.site }}) for over"
        " an hour.",
    ),
    AlertRule(
        "smartplace-rejects-high",
        "Rejects over 5 % of readings (15 minutes)",
        "platform",
        # Readings over readings (rejected / (accepted + rejected)), from per-minute increases:
        # non_negative_difference drops the fall when a worker restarts from zero.
        'SELECT sum("rejected") * 100 / (sum("rejected") + sum("accepted")) FROM (SELECT'
        ' non_negative_difference(max("rejected")) AS "rejected",'
        ' non_negative_difference(max("accepted")) AS "accepted" FROM "raw"."ingest_stats"'
        ' WHERE $timeFilter GROUP BY time(1m), "worker") GROUP BY "worker"',
        900,
        "last",
        "gt",
        5,
        "Ingest worker {{ $labels.worker }} rejected over 5 % of the readings it took in 15"
        " minutes: see the Devices board's rejects.",
    ),
    AlertRule(
        "smartplace-write-backlog",
        "Readings not reaching InfluxDB for 5 minutes",
        "platform",
        # The oldest acknowledged reading not yet written: 0 while writes keep up, however
        # large the spool files grow (they are deleted only once wholly written).
        'SELECT last("oldest_unwritten_age_s") FROM "raw"."ingest_stats" WHERE $timeFilter'
        ' GROUP BY "worker"',
        300,
        "last",
        "gt",
        300,
        "Ingest worker {{ $labels.worker }} has held readings for over 5 minutes without"
        " writing them: is InfluxDB taking writes?",
        for_duration="2m",
        exec_err_state="Alerting",
    ),
    AlertRule(
        "smartplace-ingest-stopped",
        "Ingest silent (no pipeline stats for 2 minutes)",
        "platform",
        # Every worker writes ingest_stats every 10 s: none at all means ingest is down (or
        # cannot reach InfluxDB, when the query itself fails).
        'SELECT count("received") FROM "raw"."ingest_stats" WHERE $timeFilter',
        120,
        "last",
        "lt",
        1,
        "No ingest worker has written its stats for 2 minutes: ingest is down or cannot write.",
        no_data_state="Alerting",
        exec_err_state="Alerting",
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
                # The uid 'dashboards push' files into, so that one Grafana never holds two
                # smartplace folders.
                "folderUid": FOLDER_UID,
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
                "interval": RULES_INTERVAL,
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
        "noDataState": rule.no_data_state,
        "execErrState": rule.exec_err_state,
        "for": rule.for_duration,
        "annotations": {"summary": rule.summary},
        "labels": {"team": rule.team}
        | ({"urgency": WORKING_HOURS} if rule.working_hours_only else {}),
    }


WORKING_HOURS = "working-hours"
"""The ``urgency`` label of rules that may wait for the morning."""
MUTE_OVERNIGHT = "smartplace-overnight"
WEBHOOK_ENV = "SMARTPLACE_ALERT_WEBHOOK_URL"
"""One incoming webhook (a Teams or Slack channel's) that every team's alerts also reach."""


def email_env(team: str) -> str:
    """The environment variable holding a team's alert addresses (comma or semicolon separated)."""
    return f"SMARTPLACE_ALERT_EMAIL_{team.upper()}"


def receiver_name(team: str) -> str:
    return f"smartplace-{team.replace('_', '-')}"


Chat = Literal["teams", "slack", "webhook"]
CHATS: tuple[Chat, ...] = get_args(Chat)
"""Where the chat alerts go: Grafana's Microsoft Teams or Slack integration (each posts the
message that service expects to its incoming webhook), or a plain webhook (Grafana's own
JSON, for a receiver of your own: Teams and Slack refuse it)."""


def _chat_settings(chat: Chat) -> dict[str, str]:
    # grafana/alerting receivers/{teams,slack}/config.go: both take the webhook as "url".
    url = f"${WEBHOOK_ENV}"
    return {"url": url, "httpMethod": "POST"} if chat == "webhook" else {"url": url}


def notifications(chat: Chat = "teams") -> dict[str, Any]:
    """Contact points per team (email through Grafana's SMTP settings, and the chat), the
    notification policy that routes by the ``team`` label, and the overnight mute timing.

    Grafana expands ``$VAR`` from its environment in provisioning files, so the addresses
    and the webhook come from configuration (.env), never from this repository."""
    contact_points = [
        {
            "orgId": 1,
            "name": receiver_name(team),
            "receivers": [
                {
                    "uid": f"{receiver_name(team)}-email",
                    "type": "email",
                    "settings": {"addresses": f"${email_env(team)}", "singleEmail": True},
                    "disableResolveMessage": False,
                },
                {
                    "uid": f"{receiver_name(team)}-chat",
                    "type": chat,
                    "settings": _chat_settings(chat),
                    "disableResolveMessage": False,
                },
            ],
        }
        for team in TEAMS
    ]
    routes = []
    for team in TEAMS:
        matchers = [["team", "=", team]]
        routes.append(
            {
                "receiver": receiver_name(team),
                "object_matchers": matchers,
                "routes": [
                    {
                        "receiver": receiver_name(team),
                        "object_matchers": [["urgency", "=", WORKING_HOURS]],
                        "mute_time_intervals": [MUTE_OVERNIGHT],
                    }
                ],
            }
        )
    return {
        "apiVersion": 1,
        "contactPoints": contact_points,
        "policies": [
            {
                "orgId": 1,
                # Whatever no route claims reaches the platform team, never Grafana's default.
                "receiver": receiver_name("platform"),
                "group_by": ["grafana_folder", "alertname"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
                "routes": routes,
            }
        ],
        "muteTimes": [
            {
                "orgId": 1,
                "name": MUTE_OVERNIGHT,
                # Alertmanager's ranges cannot cross midnight: 19:00-24:00 and 00:00-07:00.
                "time_intervals": [
                    {
                        "times": [
                            {"start_time": "19:00", "end_time": "24:00"},
                            {"start_time": "00:00", "end_time": "07:00"},
                        ],
                        "location": "Europe/London",
                    }
                ],
            }
        ],
    }


Policies = tuple[str, str]
"""The raw and aggregate retention policies the queries read."""
DEFAULT_POLICIES: Policies = (RAW_POLICY, AGG_POLICY)


def dashboard_json(name: str, policies: Policies = DEFAULT_POLICIES) -> str:
    encoder = JSONEncoder(sort_keys=True, indent=2)
    built = encoder.encode(DASHBOARDS[name]().build())
    if policies != DEFAULT_POLICIES:
        built = encoder.encode(_on_policies(json.loads(built), policies))
    return built + "\n"


def _on_policies(document: Any, policies: Policies) -> Any:
    """Every query in a built document, on the configured policies (written on the defaults)."""
    if policies == DEFAULT_POLICIES:
        return document
    if isinstance(document, str):
        return in_policies(document, *policies)
    if isinstance(document, list):
        return [_on_policies(item, policies) for item in document]
    if isinstance(document, dict):
        return {key: _on_policies(value, policies) for key, value in document.items()}
    return document


def rendered_files(policies: Policies = DEFAULT_POLICIES, chat: Chat = "teams") -> dict[str, str]:
    """Every generated file under dashboards/, by its path there."""
    files = {f"{name}.json": dashboard_json(name, policies) for name in DASHBOARDS}
    for path, document in (
        ("provisioning/datasources/smartplace.yaml", datasource()),
        ("provisioning/dashboards/smartplace.yaml", dashboard_provider()),
        ("provisioning/alerting/smartplace.yaml", _on_policies(alert_rules(), policies)),
        ("provisioning/alerting/notifications.yaml", notifications(chat)),
    ):
        header = "# Generated by 'smartplace dashboards build' from smartplace/dashboards/: edit there.\n"
        files[path] = header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return files


def write_all(
    directory: Path, policies: Policies = DEFAULT_POLICIES, chat: Chat = "teams"
) -> list[Path]:
    written = []
    for relative, text in rendered_files(policies, chat).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
