"""Grafana's alert evaluation, replayed against InfluxDB: no Grafana runs on these machines.

Each provisioned rule is evaluated as Grafana 11's unified alerting does
(grafana/grafana, pkg/services/ngalert), at each of its group's evaluation
times, on the rule's own query with ``$timeFilter`` covering its
``relativeTimeRange`` back from that time:

- every InfluxQL series (one per tag set) is one instance, labelled by its
  tags; the reduce expression turns it into one number: ``last``, ``mean``,
  ``min``, ``max``, ``sum`` or ``count``, NaN for an empty series, and in
  the default (strict) mode NaN when any value is null
  (pkg/expr/mathexp/reduce.go, ``Series.Reduce``); the threshold
  expression compares it (``gt``, ``lt``, ``within_range``, ``outside_range``),
  and NaN meets no threshold;
- no series at all is one NoData result without labels; a failed query is
  one Error result without labels;
- state per instance (pkg/services/ngalert/state/state.go): a firing result
  moves Normal to Pending when the rule has a ``for``, else straight to
  Alerting; Pending becomes Alerting once ``evaluated - started >= for``
  (``resultAlerting``); a non-firing result returns it to Normal
  (``resultNormal``); NoData follows ``noDataState`` (Alerting: as a firing
  result, ``for`` included; NoData: state NoData; OK: Normal; KeepLast: the
  state stays, ``resultNoData``/``resultKeepLast``), and Error follows
  ``execErrState`` the same way (``resultError``);
- an instance missing from two evaluation intervals' results is resolved
  as MissingSeries (pkg/services/ngalert/state/manager.go, ``stateIsStale``):
  why a device that sends nothing cannot fire a rule over its readings.

What Grafana sends to its Alertmanager, and so what reaches a team, is an
instance in Alerting, NoData or Error (``NeedsSending``: Pending is never
sent); :meth:`RuleReplay.firing` returns those.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Labels = tuple[tuple[str, str], ...]
NO_LABELS: Labels = ()
SENT_STATES = frozenset({"Alerting", "NoData", "Error"})
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MISSING_EVALS_TO_RESOLVE = 2


def duration_s(text: str) -> int:
    """Grafana's ``for`` and ``interval`` ("0m", "30m", "1h") in seconds."""
    return int(text[:-1]) * _UNITS_S[text[-1]]


@dataclass(frozen=True, slots=True)
class ReplayRule:
    uid: str
    query: str
    window_s: int
    reducer: str
    operator: str
    params: tuple[float, ...]
    for_s: int
    no_data_state: str
    exec_err_state: str
    interval_s: int

    @classmethod
    def from_provisioned(cls, rule: Mapping[str, Any], interval: str) -> ReplayRule:
        """A rule as dashboards/provisioning/alerting writes it (query A, reduce B, threshold C)."""
        by_ref = {step["refId"]: step for step in rule["data"]}
        source, reduce, threshold = by_ref["A"], by_ref["B"]["model"], by_ref["C"]["model"]
        (condition,) = threshold["conditions"]
        return cls(
            uid=rule["uid"],
            query=source["model"]["query"],
            window_s=int(source["relativeTimeRange"]["from"]),
            reducer=reduce["reducer"],
            operator=condition["evaluator"]["type"],
            params=tuple(float(p) for p in condition["evaluator"]["params"]),
            for_s=duration_s(rule["for"]),
            no_data_state=rule["noDataState"],
            exec_err_state=rule["execErrState"],
            interval_s=duration_s(interval),
        )

    def statement(self, at_s: int) -> str:
        """The query as Grafana's InfluxDB data source sends it at evaluation time ``at_s``."""
        start_ms, end_ms = (at_s - self.window_s) * 1000, at_s * 1000
        return self.query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")

    def meets(self, value: float) -> bool:
        if math.isnan(value):
            return False
        p = self.params
        if self.operator == "gt":
            return value > p[0]
        if self.operator == "lt":
            return value < p[0]
        if self.operator == "within_range":
            return p[0] < value < p[1]
        if self.operator == "outside_range":
            return value < p[0] or value > p[1]
        raise ValueError(f"threshold {self.operator} is not replayed")


def reduce(values: Sequence[float | None], reducer: str) -> float:
    """Grafana's reduce expression in its default (strict) mode."""
    if reducer == "count":
        return float(len(values))
    if not values:
        return math.nan
    if reducer == "last":
        last = values[-1]
        return math.nan if last is None else float(last)
    if any(v is None for v in values):
        return math.nan
    numbers = [float(v) for v in values if v is not None]
    if reducer == "sum":
        return sum(numbers)
    if reducer == "mean":
        return sum(numbers) / len(numbers)
    if reducer == "min":
        return min(numbers)
    if reducer == "max":
        return max(numbers)
    raise ValueError(f"reducer {reducer} is not replayed")


def series_results(rule: ReplayRule, result: Mapping[str, Any]) -> dict[Labels, str]:
    """One InfluxQL statement's answer as Grafana's per-instance results."""
    found: dict[Labels, str] = {}
    for series in result.get("series", []):
        labels: Labels = tuple(sorted((str(k), str(v)) for k, v in series.get("tags", {}).items()))
        values = [row[1] for row in series.get("values", [])]
        value = reduce([None if v is None else float(v) for v in values], rule.reducer)
        found[labels] = "Alerting" if rule.meets(value) else "Normal"
    return found or {NO_LABELS: "NoData"}


@dataclass(slots=True)
class Instance:
    state: str = "Normal"
    started_s: int = 0
    last_eval_s: int = 0


@dataclass
class RuleReplay:
    rule: ReplayRule
    instances: dict[Labels, Instance] = field(default_factory=dict)

    def step(self, at_s: int, results: Mapping[Labels, str]) -> None:
        """Apply one evaluation's results (``{NO_LABELS: "Error"}`` for a failed query)."""
        for labels, result in results.items():
            instance = self.instances.setdefault(labels, Instance(started_s=at_s))
            instance.last_eval_s = at_s
            self._transition(instance, result, at_s)
        stale_after = MISSING_EVALS_TO_RESOLVE * self.rule.interval_s
        for labels in [k for k, i in self.instances.items() if k not in results]:
            if at_s - self.instances[labels].last_eval_s >= stale_after:
                del self.instances[labels]  # MissingSeries: resolved and forgotten

    def _transition(self, instance: Instance, result: str, at_s: int) -> None:
        if result == "NoData":
            result = {"Alerting": "Alerting", "NoData": "NoData", "OK": "Normal"}.get(
                self.rule.no_data_state, "KeepLast"
            )
        elif result == "Error":
            result = {"Alerting": "Alerting", "Error": "Error", "OK": "Normal"}.get(
                self.rule.exec_err_state, "KeepLast"
            )
        if result == "KeepLast":
            result = "Alerting" if instance.state in ("Alerting", "Pending") else "Normal"
        if result in ("Normal", "NoData", "Error"):
            if instance.state != result:
                instance.state, instance.started_s = result, at_s
            return
        if instance.state == "Alerting":
            return
        if instance.state == "Pending":
            if at_s - instance.started_s >= self.rule.for_s:
                instance.state, instance.started_s = "Alerting", at_s
            return
        instance.state = "Pending" if self.rule.for_s > 0 else "Alerting"
        instance.started_s = at_s

    def firing(self) -> set[Labels]:
        """The instances Grafana would send to its Alertmanager now."""
        return {labels for labels, i in self.instances.items() if i.state in SENT_STATES}


def evaluation_times(start_s: int, end_s: int, interval_s: int) -> list[int]:
    """Grafana evaluates a group on a fixed tick: every multiple of its interval."""
    first = start_s - start_s % interval_s + interval_s
    return list(range(first, end_s + 1, interval_s))


def label_dict(labels: Labels) -> dict[str, str]:
    return dict(labels)


def episodes(timeline: Iterable[tuple[int, set[Labels]]]) -> list[tuple[Labels, int, int]]:
    """(instance, first firing time, last firing time) for each unbroken run of firing."""
    open_runs: dict[Labels, tuple[int, int]] = {}
    closed: list[tuple[Labels, int, int]] = []
    for at_s, firing in timeline:
        for labels in list(open_runs):
            if labels not in firing:
                closed.append((labels, *open_runs.pop(labels)))
        for labels in firing:
            first, _ = open_runs.get(labels, (at_s, at_s))
            open_runs[labels] = (first, at_s)
    closed.extend((labels, *run) for labels, run in open_runs.items())
    return sorted(closed, key=lambda e: (e[1], e[0]))
