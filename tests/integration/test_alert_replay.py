"""Every provisioned alert rule, replayed as Grafana evaluates it, over a simulated week in real influxd.

No Grafana runs here. So a week of what ingest writes (bin readings, the
air quality index, ``ingest_stats`` and ``device_health`` every
minute, made by ingest's own ``stats_line`` and ``DeviceHealth``) goes into
the real influxd, once with injected faults and once without. Then each
rule's own query is run at each of its group's evaluation times (every
minute, 10 080 a week), and its reduce, threshold, ``for`` and
no-data/error handling are applied (smartplace/dashboards/replay.py, which
cites Grafana's source). While InfluxDB is "stopped" the evaluations ask a
port nobody listens on, so they fail as Grafana's would.

Every fault must fire its rule within ``for`` plus one interval of the
first point that shows it. Every firing must be one of the faults'. The
fault-free week must fire nothing. Precision and recall per rule are printed
(``pytest -s``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import yaml

from smartplace.config import InfluxSettings
from smartplace.dashboards.provisioning import RULES_INTERVAL, rendered_files
from smartplace.dashboards.replay import (
    NO_LABELS,
    Labels,
    ReplayRule,
    RuleReplay,
    episodes,
    evaluation_times,
    series_results,
)
from smartplace.devices.model import DeviceRecord
from smartplace.errors import InfluxError
from smartplace.influx import InfluxClient
from smartplace.ingest.device_health import DeviceHealth
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.stats import IngestStats, stats_line
from smartplace.lineprotocol import format_point
from smartplace.stack import InfluxdServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = 1_000_000_000
H = 3600
DAY = 86_400
PREFIX = "town"
WORKER = "ingest-1"
BINS = {"bin-0001": "merseyway", "bin-0002": "princes-street", "bin-0003": "market-place"}
AIR = {"aq-0001": "merseyway", "aq-0002": "market-place"}
DEVICES = {
    **{d: DeviceRecord(device_id=d, kind="bin", site=s) for d, s in BINS.items()},
    **{d: DeviceRecord(device_id=d, kind="air_quality", site=s) for d, s in AIR.items()},
}
READING_EVERY_S = {"bin": 1800, "air_quality": 900}
STATS_EVERY_S = 60
"""The simulated worker's SMARTPLACE_INGEST__STATS_INTERVAL_S: a minute (not the default
10 s) keeps a week of per-minute evaluations within the test's time."""


@dataclass
class Fault:
    name: str
    rules: set[str]
    start_s: int
    end_s: int
    seen_at_s: int = 0
    """The first point that shows it (set while the week is made): the clock for 'within for'."""


@dataclass
class Week:
    start_s: int
    faults: list[Fault]
    lines: dict[str, list[str]] = field(default_factory=lambda: {"raw": [], "agg": []})
    outages: list[tuple[int, int]] = field(default_factory=list)

    def fault(self, name: str) -> Fault | None:
        return next((f for f in self.faults if f.name == name), None)

    def down(self, at_s: int) -> bool:
        return any(a <= at_s < b for a, b in self.outages)


def make_week(start_s: int, with_faults: bool) -> Week:
    d = start_s
    faults = (
        [
            Fault("device aq-0002 silent 3 h", {"smartplace-device-silent"}, d + DAY + 8 * H, d + DAY + 11 * H),
            Fault("bin-0002 filling past 80 %", {"smartplace-bin-full"}, d + 2 * DAY + 6 * H, d + 2 * DAY + 12 * H),
            Fault("bin-0003 fire alarm", {"smartplace-bin-fire"}, d + 3 * DAY + 9 * H, d + 3 * DAY + 9 * H + 1800),
            Fault("bin-0001 tilted", {"smartplace-bin-tilt"}, d + 5 * DAY + 15 * H, d + 5 * DAY + 15 * H + 1800),
            Fault("burst of malformed payloads", {"smartplace-rejects-high"}, d + 3 * DAY + 14 * H, d + 3 * DAY + 14 * H + 120),
            Fault("index High at market-place", {"smartplace-daqi-high"}, d + 4 * DAY + 13 * H, d + 4 * DAY + 16 * H),
            # InfluxDB down long enough for the backlog to grow; ingest keeps spooling.
            Fault("influxd stopped 20 min", {"smartplace-write-backlog", "smartplace-ingest-stopped"}, d + 5 * DAY + 10 * H, d + 5 * DAY + 10 * H + 1200),
            Fault("ingest killed 30 min", {"smartplace-ingest-stopped"}, d + 6 * DAY + 2 * H, d + 6 * DAY + 2 * H + 1800),
        ]
        if with_faults
        else []
    )  # fmt: skip
    week = Week(start_s, faults)
    _readings(week)
    _pipeline(week)
    return week


def _in(fault: Fault | None, at_s: int) -> bool:
    return fault is not None and fault.start_s <= at_s < fault.end_s


def _seen(fault: Fault | None, at_s: int) -> None:
    if fault is not None and not fault.seen_at_s:
        fault.seen_at_s = at_s


def _readings(week: Week) -> None:
    """Bins filling through the day and emptied each night; the index Low; the faults."""
    full, fire, tilt = (
        week.fault("bin-0002 filling past 80 %"),
        week.fault("bin-0003 fire alarm"),
        week.fault("bin-0001 tilted"),
    )
    high = week.fault("index High at market-place")
    for n, (device, site) in enumerate(BINS.items()):
        for at in range(week.start_s + 60 * n, week.start_s + 7 * DAY, READING_EVERY_S["bin"]):
            hour = (at % DAY) / H
            fill = 5.0 + 60.0 * max(0.0, min(1.0, (hour - 5) / 14))  # 5 % at dawn to 65 % by 19:00
            fields: dict[str, float | bool | int] = {
                "fill_pct": round(fill, 1),
                "tilt": False,
                "qc_flags": 0,
            }
            if device == "bin-0002" and _in(full, at):
                fields["fill_pct"] = 82.0 + (at - full.start_s) / 1800  # type: ignore[union-attr]
                _seen(full, at)
            if device == "bin-0003" and _in(fire, at):
                fields["fire_alarm"] = True
                _seen(fire, at)
            if device == "bin-0001" and _in(tilt, at):
                fields["tilt"] = True
                _seen(tilt, at)
            week.lines["raw"].append(
                format_point(
                    "bin", {"device_id": device, "kind": "bin", "site": site}, fields, at * S
                )
            )
    for site in sorted(set(AIR.values())):
        for at in range(week.start_s, week.start_s + 7 * DAY, H):
            index = 2 + (at // H) % 2
            if site == "market-place" and _in(high, at):
                index = 8
                _seen(high, at)
            band = "High" if index >= 7 else "Low"
            week.lines["agg"].append(format_point("daqi_1h", {"site": site}, {"index": index, "band": band}, at * S))  # fmt: skip


def _pipeline(week: Week) -> None:
    """What the worker writes: ingest_stats and device_health every minute."""
    silent, burst = (
        week.fault("device aq-0002 silent 3 h"),
        week.fault("burst of malformed payloads"),
    )
    outage, killed = week.fault("influxd stopped 20 min"), week.fault("ingest killed 30 min")
    if outage:
        week.outages.append((outage.start_s, outage.end_s))
        _seen(outage, outage.start_s)  # every query fails from the first evaluation on
    health = DeviceHealth(PREFIX, 60.0)
    health.started_ns = week.start_s * S
    stats = IngestStats()
    next_reading = {d: week.start_s + 37 * n for n, d in enumerate(DEVICES)}
    end = week.start_s + 7 * DAY
    for at in range(week.start_s, end, 10):
        if _in(killed, at):
            if at == killed.start_s:  # type: ignore[union-attr]
                _seen(killed, at + 120)  # the rule's window: 2 minutes without stats
            health = DeviceHealth(PREFIX, 60.0)
            health.started_ns = killed.end_s * S  # type: ignore[union-attr]
            stats = IngestStats()  # a new process: its counters start again from zero
            continue
        for device, record in DEVICES.items():
            if at >= next_reading[device]:
                next_reading[device] += READING_EVERY_S[record.kind]
                if device == "aq-0002" and _in(silent, at):
                    continue
                topic = f"{PREFIX}/{record.kind}/{device}/reading"
                health.heard([RawMessage(topic, b"{}", at * S)])
        stats.received += 20
        stats.accepted += 20
        if at % 600 == 0:
            stats.rejected_by_reason["out_of_range"] += 1  # about one in 1 200: normal life
        if _in(burst, at):
            stats.rejected_by_reason["malformed_json"] += 25
            stats.received += 25
            _seen(burst, at)
        if week.down(at):
            stats.unwritten_since_ns = stats.unwritten_since_ns or at * S
            continue  # the worker's stats and health writes fail while InfluxDB is down
        backlog = 0
        if stats.unwritten_since_ns:  # draining what the outage left: 20 messages a second
            backlog = max(0, 2000 - 20 * (at - outage.end_s))  # type: ignore[union-attr]
            if backlog == 0:
                stats.unwritten_since_ns = 0
        if at % STATS_EVERY_S == 0:
            week.lines["raw"].append(stats_line(WORKER, stats, backlog, at * S))
        if at % 60 == 0:
            week.lines["raw"].extend(health.lines(DEVICES, at * S))
            for line in week.lines["raw"][-len(DEVICES) :]:
                if silent and "aq-0002" in line and not silent.seen_at_s:
                    seconds = float(line.split("silent_s=")[1].split(",")[0])
                    if seconds > 3600:
                        _seen(silent, at)


def _write(influx: InfluxClient, week: Week) -> None:
    influx.ensure_storage()
    for policy, lines in week.lines.items():
        for first in range(0, len(lines), 20_000):
            influx.write(lines[first : first + 20_000], policy)


def _rules() -> list[ReplayRule]:
    alerting = yaml.safe_load(rendered_files()["provisioning/alerting/smartplace.yaml"])
    return [ReplayRule.from_provisioned(r, RULES_INTERVAL) for r in alerting["groups"][0]["rules"]]


def _timeline(
    influx: InfluxClient, dead: InfluxClient, rule: ReplayRule, week: Week
) -> Iterator[tuple[int, set[Labels]]]:
    replay = RuleReplay(rule)
    ticks = evaluation_times(week.start_s + H, week.start_s + 7 * DAY, rule.interval_s)
    for first in range(0, len(ticks), 120):
        chunk = ticks[first : first + 120]
        up = [t for t in chunk if not week.down(t)]
        answers = dict(
            zip(
                up, influx.query(";".join(rule.statement(t) for t in up)) if up else [], strict=True
            )
        )
        for at in chunk:
            if at in answers:
                replay.step(at, series_results(rule, answers[at]))
            else:
                try:
                    dead.query(rule.statement(at))
                except InfluxError:
                    replay.step(at, {NO_LABELS: "Error"})
            yield at, replay.firing()


Replayed = dict[str, list[tuple[Labels, int, int]]]
"""Each rule's firing episodes over the week."""


def replay_week(influxd: InfluxdServer, with_faults: bool) -> tuple[Week, Replayed]:
    start = 1_700_000_000 // DAY * DAY  # any midnight; the queries carry their own times
    week = make_week(start, with_faults)
    nobody = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=1)
    database = f"replay_{'faults' if with_faults else 'clean'}_{free_port()}"
    settings = InfluxSettings(url=influxd.url, database=database, raw_retention="INF")
    with InfluxClient(settings) as influx, InfluxClient(nobody) as dead:
        _write(influx, week)
        return week, {r.uid: episodes(_timeline(influx, dead, r, week)) for r in _rules()}


def test_a_fault_free_week_fires_nothing(influxd: InfluxdServer) -> None:
    _, replayed = replay_week(influxd, with_faults=False)
    assert {uid: found for uid, found in replayed.items() if found} == {}


def test_every_fault_fires_its_rules_in_time_and_nothing_else_fires(influxd: InfluxdServer) -> None:
    week, replayed = replay_week(influxd, with_faults=True)
    rules = {r.uid: r for r in _rules()}
    report = []
    late_or_missed = []
    for uid, found in replayed.items():
        rule = rules[uid]
        targeted = [f for f in week.faults if uid in f.rules]
        detected = 0
        matched: set[int] = set()
        for fault in targeted:
            assert fault.seen_at_s, f"{fault.name} never showed in the data"
            deadline = fault.seen_at_s + rule.for_s + rule.interval_s
            hits = [
                i
                for i, (_, first, last) in enumerate(found)
                if first <= deadline and last >= fault.start_s
            ]
            if hits:
                detected += 1
                matched.update(hits)
            else:
                late_or_missed.append((uid, fault.name, fault.seen_at_s, found))
        precision = len(matched) / len(found) if found else 1.0
        recall = detected / len(targeted) if targeted else 1.0
        report.append(f"{uid}: faults {len(targeted)}, detected {detected}, episodes {len(found)}, precision {precision:.2f}, recall {recall:.2f}")  # fmt: skip
        assert precision == 1.0, f"{uid} fired outside the faults: {[found[i] for i in range(len(found)) if i not in matched]}"  # fmt: skip
    print("\n" + "\n".join(report))
    assert late_or_missed == []
