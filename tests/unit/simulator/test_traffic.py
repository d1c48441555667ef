"""The simulator's traffic: the same seed gives the same readings, and they look like a town."""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

import numpy as np
import orjson
import pytest

from smartplace.config import IngestSettings, Settings
from smartplace.errors import ConfigError
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from smartplace.simulator.faults import RUN_LENGTH, FaultRates
from smartplace.simulator.fleet import Fleet, load_fleet
from smartplace.simulator.traffic import Outgoing, Traffic

MONDAY = 1_795_478_400  # 2026-11-23 00:00 UTC, a Monday
DAY = 86_400


def run(traffic: Traffic, start: int, end: int, step: int) -> list[Outgoing]:
    out = []
    for t in range(start, end, step):
        out += traffic.between(t, min(end, t + step))
    return out + traffic.flush()


def fingerprint(messages: list[Outgoing]) -> list[tuple[str, bytes]]:
    return [(m.topic, m.payload) for m in messages]


@pytest.fixture(scope="module")
def fortnight() -> list[dict[str, object]]:
    """Two weeks of the default fleet's readings, as the oracle records them."""
    traffic = Traffic(load_fleet(), "sp", array_max=60)
    return [r for m in run(traffic, MONDAY, MONDAY + 14 * DAY, 6 * 3600) for r in m.records]


def test_the_same_seed_gives_the_same_readings_however_the_run_is_cut() -> None:
    fleet = load_fleet()
    in_hours = run(Traffic(fleet, "sp"), MONDAY, MONDAY + DAY, 3600)
    in_one = run(Traffic(fleet, "sp"), MONDAY, MONDAY + DAY, DAY)
    in_steps = run(Traffic(fleet, "sp"), MONDAY, MONDAY + DAY, 7)  # real time, 7 s at a time
    assert fingerprint(in_hours) == fingerprint(in_one) == fingerprint(in_steps)
    other = run(Traffic(fleet.model_copy(update={"seed": 1}), "sp"), MONDAY, MONDAY + DAY, DAY)
    assert fingerprint(other) != fingerprint(in_one)


def test_faults_too_are_the_same_for_the_same_seed() -> None:
    fleet = load_fleet().model_copy(
        update={"faults": FaultRates(duplicate=0.05, late=0.05, burst=0.05)}
    )
    a = run(Traffic(fleet, "sp"), MONDAY, MONDAY + DAY, 3600)
    b = run(Traffic(fleet, "sp"), MONDAY, MONDAY + DAY, 600)
    assert fingerprint(a) == fingerprint(b)


def test_weekday_no2_at_eight_is_above_three(fortnight: list[dict[str, object]]) -> None:
    by_hour: dict[int, list[float]] = defaultdict(list)
    for r in fortnight:
        ts = int(r["ts"])  # type: ignore[call-overload]
        if r["kind"] == "air_quality" and (ts // DAY + 3) % 7 < 5:
            by_hour[ts % DAY // 3600].append(r["values"]["no2_ugm3"])  # type: ignore[index]
    assert np.mean(by_hour[8]) > 1.5 * np.mean(by_hour[3])


def test_saturday_footfall_is_above_tuesday(fortnight: list[dict[str, object]]) -> None:
    by_weekday: Counter[int] = Counter()
    for r in fortnight:
        if r["kind"] == "footfall":
            by_weekday[(int(r["ts"]) // DAY + 3) % 7] += r["values"]["count_in"]  # type: ignore[call-overload, index]
    assert by_weekday[5] > 1.15 * by_weekday[1]


def test_in_and_out_balance_over_each_day(fortnight: list[dict[str, object]]) -> None:
    days: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for r in fortnight:
        if r["kind"] == "footfall":
            day = days[int(r["ts"]) // DAY]  # type: ignore[call-overload]
            day[0] += r["values"]["count_in"]  # type: ignore[index]
            day[1] += r["values"]["count_out"]  # type: ignore[index]
    assert len(days) >= 14
    for count_in, count_out in days.values():
        assert abs(count_out - count_in) / count_in < 0.04


def test_a_bins_fill_falls_only_at_collection_rounds(fortnight: list[dict[str, object]]) -> None:
    """Beyond the sensor's noise (1 point), fill only falls in the 06:00 round."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in fortnight:
        if r["kind"] == "bin":
            series[str(r["device_id"])].append((int(r["ts"]), r["values"]["fill_pct"]))  # type: ignore[call-overload, index]
    rounds = 0
    for readings in series.values():
        for (_, before), (ts, after) in pairwise(readings):
            if after < before - 6:
                assert ts % DAY // 3600 == 6, (ts, before, after)
                rounds += 1
    assert rounds >= 10  # and there were collections to see


def test_fault_rates_come_out_near_their_knobs() -> None:
    rates = dict(
        malformed=0.02,
        out_of_range=0.02,
        spike=0.03,
        stuck=0.05,
        duplicate=0.02,
        late=0.02,
        clock_skew=0.05,
        silence=0.05,
        burst=0.05,
        wrong_topic=0.01,
    )
    fleet = load_fleet().model_copy(update={"faults": FaultRates(**rates)})
    records = [
        r for m in run(Traffic(fleet, "sp"), MONDAY, MONDAY + 7 * DAY, DAY) for r in m.records
    ]
    readings = [r for r in records if r["kind"] != "device_status"]
    counts = Counter(fault for r in readings for fault in set(r["faults"]))
    for name, rate in rates.items():
        share = counts[name] / len(readings)
        # Runs start at random, so run-shaped faults wander more than single ones.
        tolerance = 0.35 if name in RUN_LENGTH else 0.2
        assert share == pytest.approx(rate, rel=tolerance), (name, share)


def test_every_format_decodes_cleanly_through_the_real_pipeline() -> None:
    """Fault-free traffic in each format: ingest's own decoder accepts every reading."""
    now = 1_795_600_000
    for output in ("native", "senml", "ttn"):
        groups = [
            g.model_copy(update={"format": output})
            for g in load_fleet().devices
            if output != "ttn" or g.kind == "bin"
        ]
        fleet = load_fleet().model_copy(update={"devices": groups})
        messages = Traffic(fleet, "smartplace", array_max=1).between(now - 3600, now)
        pipeline = Pipeline(Settings(ingest=IngestSettings(require_registered_devices=False)))
        pipeline.ttn.profiles_by_application["smartplace-sim"] = "milesight-em310-udl"
        out = pipeline.process(
            [RawMessage(m.topic, m.payload, (now + 5) * 10**9) for m in messages]
        )
        assert [r.reason.value for r in out.rejects] == [], (output, out.rejects[:2])
        sent = sum(len(m.records) for m in messages if "/status" not in m.topic)
        statuses = sum(1 for m in messages if "/status" in m.topic)
        link_quality = sent if output == "ttn" else 0  # an uplink also gives a status reading
        assert out.accepted == sent + statuses + link_quality, output


def test_a_bad_fleet_file_says_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(
        '[[sites]]\nname = "a"\nlatitude = 53\nlongitude = -2\n[[devices]]\nsite = "b"\nkind = "bin"\n'
    )
    with pytest.raises(ConfigError, match="site 'b', which is not in sites"):
        load_fleet(path)
    path.write_text("sites = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_fleet(path)
    with pytest.raises(ConfigError, match="cannot read the fleet file"):
        load_fleet(tmp_path / "missing.toml")


def test_the_default_fleet_spreads_25_devices_over_five_sites() -> None:
    members = load_fleet().members()
    assert Counter(m.kind for m in members) == {"air_quality": 10, "footfall": 5, "bin": 10}
    assert len({m.site.name for m in members}) == 5
    assert len({m.device_id for m in members}) == 25
    assert isinstance(Fleet.model_json_schema(), dict)
    assert orjson.dumps(members[0].record().registry_message())
