"""The replayed Grafana semantics: reduce, threshold, for/pending, NoData, Error, missing series."""

from __future__ import annotations

import math

import pytest

from smartplace.dashboards.replay import (
    NO_LABELS,
    ReplayRule,
    RuleReplay,
    episodes,
    evaluation_times,
    reduce,
    series_results,
)

DEVICE = (("device_id", "bin-1"),)


def rule(for_s: int = 0, no_data: str = "OK", exec_err: str = "KeepLast") -> ReplayRule:
    return ReplayRule("r", "SELECT 1", 600, "last", "gt", (80.0,), for_s, no_data, exec_err, 60)


@pytest.mark.parametrize(
    ("values", "reducer", "expected"),
    [
        ([1.0, 5.0, 3.0], "last", 3.0),
        ([1.0, 5.0, 3.0], "max", 5.0),
        ([1.0, 5.0, 3.0], "mean", 3.0),
        ([1.0, None, 3.0], "max", math.nan),  # strict mode: a null poisons the reduction
        ([1.0, None, 3.0], "count", 3.0),
        ([], "last", math.nan),
        ([], "count", 0.0),
    ],
)
def test_reduce_is_grafanas_strict_mode(
    values: list[float | None], reducer: str, expected: float
) -> None:
    got = reduce(values, reducer)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_each_series_is_an_instance_and_none_is_one_nodata() -> None:
    answer = {
        "series": [
            {"tags": {"device_id": "bin-1"}, "values": [[0, 90.0]]},
            {"tags": {"device_id": "bin-2"}, "values": [[0, 10]]},
        ]
    }
    assert series_results(rule(), answer) == {
        DEVICE: "Alerting",
        (("device_id", "bin-2"),): "Normal",
    }
    assert series_results(rule(), {}) == {NO_LABELS: "NoData"}


def test_for_holds_pending_until_it_has_passed() -> None:
    replay = RuleReplay(rule(for_s=1800))
    states = []
    for at in range(0, 2400, 60):
        replay.step(at, {DEVICE: "Alerting"})
        states.append(replay.instances[DEVICE].state)
    assert states.index("Alerting") == 30  # 1800 s after the first firing result
    assert set(states[:30]) == {"Pending"}
    replay.step(2400, {DEVICE: "Normal"})
    assert replay.firing() == set()


def test_a_pending_alert_that_clears_never_fires() -> None:
    replay = RuleReplay(rule(for_s=600))
    replay.step(0, {DEVICE: "Alerting"})
    replay.step(60, {DEVICE: "Normal"})
    replay.step(120, {DEVICE: "Alerting"})
    replay.step(660, {DEVICE: "Alerting"})
    assert replay.firing() == set()  # pending restarted at 120
    replay.step(720, {DEVICE: "Alerting"})
    assert replay.firing() == {DEVICE}


def test_a_missing_series_is_resolved_after_two_intervals() -> None:
    replay = RuleReplay(rule())
    replay.step(0, {DEVICE: "Alerting"})
    replay.step(60, {NO_LABELS: "NoData"})
    assert replay.firing() == {DEVICE}
    replay.step(120, {NO_LABELS: "NoData"})
    assert replay.firing() == set()  # MissingSeries: why a silent device cannot fire on readings


@pytest.mark.parametrize(
    ("no_data", "fires"),
    [("Alerting", {NO_LABELS}), ("NoData", {NO_LABELS}), ("OK", set()), ("KeepLast", set())],
)
def test_no_data_follows_the_rules_no_data_state(
    no_data: str, fires: set[tuple[tuple[str, str], ...]]
) -> None:
    replay = RuleReplay(rule(no_data=no_data))
    replay.step(0, {NO_LABELS: "NoData"})
    assert replay.firing() == fires


def test_an_error_alerts_only_where_the_rule_says_so() -> None:
    alerting, keep = RuleReplay(rule(exec_err="Alerting")), RuleReplay(rule())
    for replay in (alerting, keep):
        replay.step(0, {NO_LABELS: "Error"})
    assert alerting.firing() == {NO_LABELS}
    assert keep.firing() == set()


def test_evaluations_fall_on_the_interval_and_episodes_join_runs() -> None:
    assert evaluation_times(100, 300, 60) == [120, 180, 240, 300]
    timeline = [(0, {DEVICE}), (60, {DEVICE}), (120, set()), (180, {DEVICE})]
    assert episodes(timeline) == [(DEVICE, 0, 60), (DEVICE, 180, 180)]
