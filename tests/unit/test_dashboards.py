"""The generated dashboards load back into the SDK's model and point at the provisioned source."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from smartplace.dashboards.influxql import DATASOURCE_UID, InfluxQLQuery, register
from smartplace.dashboards.provisioning import (
    ALERT_RULES,
    TEAMS,
    Chat,
    notifications,
    rendered_files,
)

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


WINDOW = re.compile(r'"(?:raw|agg)"\."(\w+?)(?:_(\d+[mh]))?"')
RESOLUTION = {"1m": 60, "15m": 900, "1h": 3600}


def test_every_panel_grouping_by_interval_sets_the_min_interval_of_what_it_reads() -> None:
    """At least a minute (devices report no faster), and no finer than the finest window a
    panel reads: 15 minutes over footfall_15m, an hour over *_1h and the hourly ledger."""
    grouped = 0
    for name, board in BOARDS.items():
        for panel in board["panels"]:
            queries = [t["query"] for t in panel.get("targets", [])]
            if not any("$__interval" in q for q in queries):
                continue
            grouped += 1
            finest = min(
                3600 if measurement == "delivery_ledger" else RESOLUTION.get(window or "1m", 60)
                for q in queries
                for measurement, window in WINDOW.findall(q)
            )
            wanted = {60: "1m", 900: "15m", 3600: "1h"}[finest]
            assert panel.get("interval") == wanted, f"{name} / {panel['title']}"
    assert grouped >= 15


def test_no_time_series_over_the_dashboards_range_groups_by_a_fixed_interval() -> None:
    for name, board in BOARDS.items():
        for panel in board["panels"]:
            if panel["type"] != "timeseries" or panel.get("timeFrom"):
                continue  # a fixed range (7 days) has a fixed number of buckets
            for target in panel["targets"]:
                assert "GROUP BY time($__interval)" in target["query"], (
                    f"{name} / {panel['title']}: {target['query']}"
                )


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


def test_each_rule_reaches_its_team_by_email_and_chat() -> None:
    points = {c["name"]: c for c in NOTIFY["contactPoints"]}
    rules = yaml.safe_load(FILES["provisioning/alerting/smartplace.yaml"])["groups"][0]["rules"]
    for rule in rules:
        receiver, mutes = _route(rule["labels"])
        assert receiver == f"smartplace-{rule['labels']['team'].replace('_', '-')}", rule["uid"]
        kinds = {r["type"] for r in points[receiver]["receivers"]}
        assert kinds == {"email", "teams"}  # the default chat
        assert mutes == (
            ["smartplace-overnight"]
            if rule["uid"] in ("smartplace-bin-full", "smartplace-bin-tilt")
            else []
        ), rule["uid"]  # a fire, or a dead pipeline, is never muted
    assert _route({"team": "nobody"})[0] == "smartplace-platform"  # not Grafana's default receiver
    assert set(points) == {f"smartplace-{t.replace('_', '-')}" for t in TEAMS}


@pytest.mark.parametrize(
    ("chat", "settings"),
    [
        # grafana/alerting receivers/teams/config.go and receivers/slack/config.go: "url".
        ("teams", {"url": "$SMARTPLACE_ALERT_WEBHOOK_URL"}),
        ("slack", {"url": "$SMARTPLACE_ALERT_WEBHOOK_URL"}),
        ("webhook", {"url": "$SMARTPLACE_ALERT_WEBHOOK_URL", "httpMethod": "POST"}),
    ],
)
def test_chat_alerts_use_the_integration_that_service_accepts(
    chat: Chat, settings: dict[str, str]
) -> None:
    for point in notifications(chat)["contactPoints"]:
        (integration,) = [r for r in point["receivers"] if r["type"] != "email"]
        assert (integration["type"], integration["settings"]) == (chat, settings)


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


DEFRA_COLOURS = [
    "#9CFF9C", "#31FF00", "#31CF00", "#FFFF00", "#FFCF00",
    "#FF9A00", "#FF6464", "#FF0000", "#990000", "#CE30FF",
]  # fmt: skip
"""openair-project/openair R/openColours.R (the "daqi" scheme), as cited in build.py."""
WORDS = [
    "1 Low", "2 Low", "3 Low", "4 Moderate", "5 Moderate", "6 Moderate",
    "7 High", "8 High", "9 High", "10 Very High",
]  # fmt: skip


def _panel(board: str, title: str) -> dict[str, Any]:
    panels: list[dict[str, Any]] = [p for p in BOARDS[board]["panels"] if p["title"] == title]
    (panel,) = panels
    return panel


def _words(mappings: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[Any]]:
    (values,) = [m for m in mappings if m["type"] == "value"]
    ordered = sorted(values["options"].items(), key=lambda kv: int(kv[0]))
    assert [k for k, _ in ordered] == [str(i) for i in range(1, 11)]
    special = [
        (m["options"]["match"], m["options"]["result"]) for m in mappings if m["type"] == "special"
    ]
    return [(r["text"], r["color"]) for _, r in ordered], special


STAT = "Index now, per site (sites silent for 2 h: see the table)"
TABLE = "Index now, by site (stale sites marked)"
MAP = "Index now, on the map"


def test_the_index_now_reads_as_band_words_in_defras_ten_colours_on_stat_table_and_map() -> None:
    for source in (
        _panel("air-quality.json", STAT)["fieldConfig"]["defaults"],
        _panel("air-quality.json", MAP)["fieldConfig"]["defaults"],
        *(
            {"mappings": prop["value"]}
            for o in _panel("air-quality.json", TABLE)["fieldConfig"]["overrides"]
            if o["matcher"]["options"] == "index"
            for prop in o["properties"]
            if prop["id"] == "mappings"
        ),
    ):
        words, special = _words(source["mappings"])
        assert words == list(zip(WORDS, DEFRA_COLOURS, strict=True))
        assert special == [("null", {"text": "stale", "color": "#808080", "index": 10})]
    for name in (STAT, TABLE, MAP):
        steps = _panel("air-quality.json", name)["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [(s["value"], s["color"]) for s in steps] == [
            (None if i == 1 else i, c) for i, c in enumerate(DEFRA_COLOURS, 1)
        ]


def test_stale_sites_are_read_only_from_hours_that_ended_within_two_hours() -> None:
    for name in (STAT, TABLE, MAP):
        queries = [t["query"] for t in _panel("air-quality.json", name)["targets"]]
        (fresh,) = [q for q in queries if '"daqi_1h"' in q and "$timeFilter" not in q]
        assert "time > now() - 3h" in fresh  # stamped at the hour's start: ended 2 h ago
    table = _panel("air-quality.json", TABLE)
    assert table["transformations"][0] == {
        "id": "joinByField",
        "options": {"byField": "site", "mode": "outer"},
    }


def test_pm_only_is_shown_in_words() -> None:
    table = _panel("air-quality.json", TABLE)
    assert 'last("pm_only") AS "PM only"' in table["targets"][0]["query"]
    (override,) = [
        o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "PM only"
    ]
    (mapping,) = override["properties"][0]["value"]
    assert mapping["options"]["true"]["text"] == "DAQI (PM only)"


def test_the_map_colours_each_site_marker_by_the_index_and_opens_on_the_town() -> None:
    panel = _panel("air-quality.json", MAP)
    (layer,) = panel["options"]["layers"]
    assert layer["type"] == "markers"
    assert layer["location"] == {"mode": "coords", "latitude": "latitude", "longitude": "longitude"}
    assert layer["config"]["style"]["color"] == {"field": "index", "fixed": "#808080"}
    assert (panel["options"]["view"]["lat"], panel["options"]["view"]["lon"]) == (53.4106, -2.1575)


def test_the_collection_list_is_sorted_soonest_full_first_with_location_fire_and_tilt() -> None:
    panel = _panel("bins.json", "Collection list, soonest full first")
    assert [t["resultFormat"] for t in panel["targets"]] == ["table"] * 4
    assert panel["transformations"] == [
        {"id": "joinByField", "options": {"byField": "device_id", "mode": "outer"}},
        {"id": "sortBy", "options": {"sort": [{"field": "hours to full", "desc": False}]}},
    ]
    queries = " ".join(t["query"] for t in panel["targets"])
    for needed in ('"latitude"', '"longitude"', '"fire_alarm" = true', '"tilt" = true'):
        assert needed in queries
    mappings = {
        o["matcher"]["options"]: p["value"]
        for o in panel["fieldConfig"]["overrides"]
        for p in o["properties"]
        if p["id"] == "mappings"
    }
    assert mappings["hours to full"] == [
        {"type": "value", "options": {"100000": {"text": "not filling", "index": 0}}}
    ]
    alarms = mappings["/^(fire|tilted)/"]
    assert [(m["type"], m["options"]["result"]["text"]) for m in alarms] == [
        ("special", "no"),
        ("range", "YES"),
    ]
    assert (alarms[1]["options"]["from"], alarms[1]["options"]["to"]) == (1, 1_000_000)


def test_footfall_is_compared_with_the_same_24_hours_one_to_four_weeks_before() -> None:
    panel = _panel(
        "footfall.json",
        "People in: the last 24 h against the same 24 h in each of the 4 weeks before",
    )
    windows = [t["query"].split(" WHERE ")[1].split(' AND "site"')[0] for t in panel["targets"]]
    assert windows == [
        "time > now() - 25h AND time <= now() - 1h",
        "time > now() - 193h AND time <= now() - 169h",
        "time > now() - 361h AND time <= now() - 337h",
        "time > now() - 529h AND time <= now() - 505h",
        "time > now() - 697h AND time <= now() - 673h",
    ]


def test_every_board_links_to_the_others_by_their_tag_keeping_time_and_site() -> None:
    for name, board in BOARDS.items():
        assert board["tags"] == ["smartplace"]
        (link,) = board["links"]
        assert (link["type"], link["tags"], link["keepTime"], link["includeVars"]) == (
            "dashboards",
            ["smartplace"],
            True,
            True,
        ), name


def test_a_site_links_to_its_air_quality_bin_and_footfall_boards() -> None:
    wanted = {
        f"/d/smartplace-{board}?var-site=VALUE&${{__url_time_range}}"
        for board in ("air-quality", "bins", "footfall")
    }
    found = 0
    for board in BOARDS.values():
        for panel in board["panels"]:
            config = panel.get("fieldConfig", {})
            for links, variable in [
                (config.get("defaults", {}).get("links"), "${__field.labels.site}"),
                *(
                    (p["value"], "${__value.raw}")
                    for o in config.get("overrides", [])
                    if o["matcher"]["options"] == "site"
                    for p in o["properties"]
                    if p["id"] == "links"
                ),
            ]:
                if links:
                    assert {link["url"] for link in links} == {
                        u.replace("VALUE", variable) for u in wanted
                    }
                    found += 1
    assert found == 4  # the air quality table and series, the collection list, footfall by site


def test_the_ledger_balance_is_received_less_written_less_rejected_per_hour() -> None:
    panel = _panel(
        "pipeline.json", "Ledger balance: received - written - rejected (0: nothing lost)"
    )
    (target,) = panel["targets"]
    assert target["query"].startswith(
        'SELECT sum("received") - sum("written") - sum("rejected") AS "unaccounted" FROM'
        ' "raw"."delivery_ledger"'
    )
    assert panel["interval"] == "1h"
