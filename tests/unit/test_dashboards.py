"""The generated dashboards load back into the SDK's model and point at the provisioned source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from smartplace.dashboards.influxql import DATASOURCE_UID, InfluxQLQuery, register
from smartplace.dashboards.provisioning import ALERT_RULES, TEAMS, rendered_files

FILES = rendered_files()
BOARDS = {name: json.loads(text) for name, text in FILES.items() if name.endswith(".json")}


@pytest.fixture(scope="module", autouse=True)
def sdk_plugins() -> None:
    register_default_plugins()
    register()


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_each_dashboard_loads_into_the_sdk_model_with_typed_influxql_targets(name: str) -> None:
    board = Dashboard.from_json(BOARDS[name])
    assert board.uid == BOARDS[name]["uid"]
    targets = [t for p in board.panels or [] for t in getattr(p, "targets", None) or []]
    assert targets
    assert all(isinstance(t, InfluxQLQuery) and t.query.startswith("SELECT") for t in targets)


def test_six_dashboards_with_distinct_uids() -> None:
    assert sorted(BOARDS) == [
        "air-quality.json",
        "bins.json",
        "devices.json",
        "footfall.json",
        "overview.json",
        "pipeline.json",
    ]
    assert len({b["uid"] for b in BOARDS.values()}) == 6


def test_every_panel_target_and_variable_uses_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(FILES["provisioning/datasources/smartplace.yaml"])
    (source,) = provisioned["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "influxdb"
    for board in BOARDS.values():
        for panel in board["panels"]:
            for ref in [
                panel.get("datasource"),
                *(t.get("datasource") for t in panel.get("targets", [])),
            ]:
                if ref is not None:
                    assert ref == {"type": "influxdb", "uid": DATASOURCE_UID}, panel["title"]
        for variable in board.get("templating", {}).get("list", []):
            assert variable["datasource"]["uid"] == DATASOURCE_UID


def test_alert_rules_cover_the_conditions_and_use_the_datasource() -> None:
    rules = yaml.safe_load(FILES["provisioning/alerting/smartplace.yaml"])["groups"][0]["rules"]
    assert [r["uid"] for r in rules] == [rule.uid for rule in ALERT_RULES]
    assert [r["uid"].removeprefix("smartplace-") for r in rules] == [
        "bin-full",
        "bin-fire",
        "bin-tilt",
        "daqi-high",
        "device-silent",
        "rejects-high",
        "write-backlog",
        "ingest-stopped",
    ]
    for rule in rules:
        assert rule["data"][0]["datasourceUid"] == DATASOURCE_UID
        assert rule["condition"] == "C"
        assert rule["labels"]["team"] in TEAMS


def test_the_rules_the_issue_found_wrong_are_right_now() -> None:
    rules = {
        r["uid"]: r
        for r in yaml.safe_load(FILES["provisioning/alerting/smartplace.yaml"])["groups"][0][
            "rules"
        ]
    }
    assert rules["smartplace-bin-full"]["for"] == "30m"  # a real 'for', not 0m
    assert '"raw"."device_health"' in rules["smartplace-device-silent"]["data"][0]["model"]["query"]
    backlog = rules["smartplace-write-backlog"]["data"][0]["model"]["query"]
    assert "oldest_unwritten_age_s" in backlog
    assert "spool_bytes" not in backlog
    assert rules["smartplace-ingest-stopped"]["noDataState"] == "Alerting"
    assert (
        "non_negative_difference" in rules["smartplace-rejects-high"]["data"][0]["model"]["query"]
    )


def test_no_secret_is_written_into_provisioning() -> None:
    text = FILES["provisioning/datasources/smartplace.yaml"]
    (source,) = yaml.safe_load(text)["datasources"]
    assert source["user"] == "grafana"  # the read-only account deploy/influxdb/init.sh creates
    assert source["secureJsonData"] == {"password": "$INFLUXDB_GRAFANA_PASSWORD"}  # from the env


def test_committed_dashboards_are_what_the_code_builds() -> None:
    root = Path(__file__).resolve().parents[2] / "dashboards"
    for relative, text in FILES.items():
        assert (root / relative).read_text() == text, (
            f"dashboards/{relative} is stale: run 'smartplace dashboards build'"
        )


def test_push_to_a_grafana_that_is_not_there_says_so() -> None:
    from smartplace.dashboards.push import push
    from smartplace.errors import SmartplaceError
    from smartplace.stack import free_port

    with pytest.raises(SmartplaceError, match=r"cannot reach Grafana at http://127\.0\.0\.1:"):
        push(f"http://127.0.0.1:{free_port()}", "token", timeout_s=2)


def test_every_panel_grouping_by_interval_sets_a_min_interval() -> None:
    for name, board in BOARDS.items():
        for panel in board["panels"]:
            if any("$__interval" in t["query"] for t in panel.get("targets", [])):
                assert panel.get("interval") == "1m", f"{name} / {panel['title']}"


NOTIFY = yaml.safe_load(FILES["provisioning/alerting/notifications.yaml"])


def _route(labels: dict[str, str]) -> tuple[str, list[str]]:
    """Where Alertmanager's routing tree sends an alert with these labels (first match, nested)."""
    (root,) = NOTIFY["policies"]
    node, receiver, mutes = root, root["receiver"], []
    while True:
        for child in node.get("routes", []):
            if all(labels.get(k) == v for k, op, v in child["object_matchers"] if op == "="):
                node, receiver = child, child.get("receiver", receiver)
                mutes = child.get("mute_time_intervals", [])
                break
        else:
            return receiver, mutes


def test_each_rule_reaches_its_team_by_email_and_webhook() -> None:
    points = {c["name"]: c for c in NOTIFY["contactPoints"]}
    rules = yaml.safe_load(FILES["provisioning/alerting/smartplace.yaml"])["groups"][0]["rules"]
    for rule in rules:
        receiver, mutes = _route(rule["labels"])
        assert receiver == f"smartplace-{rule['labels']['team'].replace('_', '-')}", rule["uid"]
        kinds = {r["type"] for r in points[receiver]["receivers"]}
        assert kinds == {"email", "webhook"}
        assert mutes == (
            ["smartplace-overnight"]
            if rule["uid"] in ("smartplace-bin-full", "smartplace-bin-tilt")
            else []
        ), rule["uid"]  # a fire, or a dead pipeline, is never muted
    assert _route({"team": "nobody"})[0] == "smartplace-platform"  # not Grafana's default receiver
    assert set(points) == {f"smartplace-{t.replace('_', '-')}" for t in TEAMS}


def test_the_mute_timing_exists_and_no_range_crosses_midnight() -> None:
    (mute,) = NOTIFY["muteTimes"]
    assert mute["name"] == "smartplace-overnight"
    for interval in mute["time_intervals"]:
        assert interval["location"] == "Europe/London"
        for span in interval["times"]:
            assert span["start_time"] < span["end_time"]


def test_every_address_and_webhook_comes_from_grafanas_environment_in_compose() -> None:
    import re

    wanted = set(re.findall(r"\$(\w+)", FILES["provisioning/alerting/notifications.yaml"]))
    assert wanted == {
        "SMARTPLACE_ALERT_WEBHOOK_URL",
        *(f"SMARTPLACE_ALERT_EMAIL_{t.upper()}" for t in TEAMS),
    }
    compose = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()
    )
    grafana = compose["services"]["grafana"]["environment"]
    assert wanted <= set(grafana)
    assert grafana["GF_SMTP_ENABLED"] == "true"
    assert {"GF_SMTP_HOST", "GF_SMTP_USER", "GF_SMTP_PASSWORD", "GF_SMTP_FROM_ADDRESS"} <= set(
        grafana
    )


def test_provisioning_and_push_use_one_folder_uid() -> None:
    from smartplace.dashboards import push

    (provider,) = yaml.safe_load(FILES["provisioning/dashboards/smartplace.yaml"])["providers"]
    assert provider["folderUid"] == push.FOLDER_UID == "smartplace"


def test_the_index_now_reads_as_defras_band_words() -> None:
    (gauge,) = [
        p for p in BOARDS["air-quality.json"]["panels"] if p["title"] == "Index now, per site"
    ]
    bands = [
        (m["options"]["from"], m["options"]["to"], m["options"]["result"]["text"])
        for m in gauge["fieldConfig"]["defaults"]["mappings"]
    ]
    assert bands == [(1, 3, "Low"), (4, 6, "Moderate"), (7, 9, "High"), (10, 10, "Very High")]
