"""The new panels' queries, from the generated JSON, give exact answers on data whose answers are known.

test_dashboards.py proves every query returns something from a simulated town; here each
panel that answers an operations question (air quality now with stale sites, the bin
collection list, footfall against the same weekday, the ledger balance) gets hand-made
points in real influxd and must return exactly what they imply. No Grafana runs here: the
joins and sorts Grafana applies afterwards are not executed, only the queries they read.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from smartplace.dashboards.build import NOT_FILLING
from smartplace.dashboards.provisioning import rendered_files
from smartplace.influx import InfluxClient
from tests.integration.test_dashboards import PEOPLE_IN_WEEKS, expand

pytestmark = pytest.mark.integration

H = 3_600
DAY = 86_400
BOARDS = {n: json.loads(t) for n, t in rendered_files().items() if n.endswith(".json")}
ALL = {"site": ".*"}


def target(board: str, title: str, ref: str = "A") -> tuple[dict[str, Any], str]:
    (panel,) = [p for p in BOARDS[board]["panels"] if p["title"] == title]
    (query,) = [t["query"] for t in panel["targets"] if t["refId"] == ref]
    return panel, query


def run(
    influx: InfluxClient,
    board: str,
    title: str,
    ref: str = "A",
    variables: dict[str, str] = ALL,
) -> dict[tuple[str, ...], list[list[Any]]]:
    """Each series' values (time dropped), keyed by its tag values, as Grafana would get them
    for the last 24 h at the panel's minimum interval."""
    panel, query = target(board, title, ref)
    now = int(time.time())
    statement = expand(query, (now - DAY, now), variables, panel.get("interval", "1m"))
    return {
        tuple((s.get("tags") or {}).values()): [row[1:] for row in s["values"]]
        for r in influx.query(statement)
        for s in r.get("series", [])
    }


def run_timed(
    influx: InfluxClient, board: str, title: str, ref: str = "A"
) -> dict[tuple[str, ...], list[list[Any]]]:
    panel, query = target(board, title, ref)
    now = int(time.time())
    statement = expand(query, (now - DAY, now), ALL, panel.get("interval", "1m"))
    return {
        tuple((s.get("tags") or {}).values()): [
            [row[0] // 1_000_000_000, *row[1:]] for row in s["values"]
        ]
        for r in influx.query(statement)
        for s in r.get("series", [])
    }


@pytest.fixture
def hour(influx: InfluxClient) -> int:
    """The current hour's start (s), with at least two minutes of it left to run the test in."""
    influx.ensure_storage()
    left = H - time.time() % H
    if left < 120:
        time.sleep(left + 1)
    return int(time.time()) // H * H


def ns(seconds: int) -> int:
    return seconds * 1_000_000_000


AQ = "air-quality.json"


def write_daqi(influx: InfluxClient, n: int) -> None:
    influx.write(
        [
            # fresh-pm: its newest hour ended just now; PM only.
            f'daqi_1h,site=fresh-pm index=3i,band="Low",pollutant="pm25",pm_only=true {ns(n - H)}',
            # fresh-gas: newest hour ended an hour ago (within 2 h), set by NO2.
            'daqi_1h,site=fresh-gas index=7i,band="High",pollutant="no2",pm_only=false'
            f" {ns(n - 2 * H)}",
            'daqi_1h,site=fresh-gas index=9i,band="High",pollutant="no2",pm_only=false'
            f" {ns(n - 5 * H)}",
            # stale: newest hour ended 3 h ago.
            'daqi_1h,site=stale index=8i,band="High",pollutant="pm10",pm_only=true'
            f" {ns(n - 4 * H)}",
        ],
        "agg",
    )


def test_the_index_now_leaves_a_stale_site_out_of_what_is_current(
    influx: InfluxClient, hour: int
) -> None:
    write_daqi(influx, hour)
    stat = "Index now, per site (sites silent for 2 h: see the table)"
    assert run(influx, AQ, stat) == {("fresh-gas",): [[7]], ("fresh-pm",): [[3]]}
    assert run(influx, AQ, stat, variables={"site": "stale"}) == {}
    table = "Index now, by site (stale sites marked)"
    assert run(influx, AQ, table) == {
        ("fresh-gas",): [[7, "no2", False]],
        ("fresh-pm",): [[3, "pm25", True]],
    }
    # The stale site is still listed, by its last index and hour, for the table to mark.
    assert run_timed(influx, AQ, table, "B") == {
        ("fresh-gas",): [[hour - 2 * H, 7]],
        ("fresh-pm",): [[hour - H, 3]],
        ("stale",): [[hour - 4 * H, 8]],
    }
    # The town's worst index now is fresh-gas's 7: not the stale site's 8, nor an older 9.
    worst = "Worst air quality index now, any site"
    assert run(influx, "overview.json", worst) == {(): [[7]]}


def test_the_index_map_places_each_site_at_its_monitors_and_colours_it_by_the_index_now(
    influx: InfluxClient, hour: int
) -> None:
    write_daqi(influx, hour)
    influx.write(
        [
            f"device_info,device_id=aq-1,kind=air_quality,site=fresh-pm latitude=53.5,"
            f'longitude=-2.0,status="active" {ns(hour - 3 * DAY)}',
            # aq-1 moved: its newest registry record counts.
            f"device_info,device_id=aq-1,kind=air_quality,site=fresh-pm latitude=53.40,"
            f'longitude=-2.15,status="active" {ns(hour - 2 * DAY)}',
            f"device_info,device_id=aq-2,kind=air_quality,site=fresh-pm latitude=53.42,"
            f'longitude=-2.17,status="active" {ns(hour - DAY)}',
            f"device_info,device_id=aq-3,kind=air_quality,site=stale latitude=53.0,"
            f'longitude=-2.5,status="active" {ns(hour - DAY)}',
            # A bin at the same site is no air quality monitor.
            f"device_info,device_id=bin-9,kind=bin,site=fresh-pm latitude=60.0,"
            f'longitude=0.0,status="active" {ns(hour - DAY)}',
        ],
        "raw",
    )
    where = run(influx, AQ, "Index now, on the map")
    assert where.keys() == {("fresh-pm",), ("stale",)}
    assert where[("fresh-pm",)][0] == pytest.approx([53.41, -2.16])
    assert where[("stale",)] == [[53.0, -2.5]]
    assert run(influx, AQ, "Index now, on the map", "B") == {
        ("fresh-gas",): [[7, "no2", False]],
        ("fresh-pm",): [[3, "pm25", True]],
    }  # stale has no index now: joined by site, its marker takes the stale colour


BINS = "bins.json"
LIST = "Collection list, soonest full first"


def test_the_collection_list_gives_hours_to_full_from_the_newest_hour(
    influx: InfluxClient, hour: int
) -> None:
    influx.write(
        [
            # bin-1 filling: 8 h to full at the newest hour's rate.
            f"bin_1h,device_id=bin-1,site=a fill_pct_last=50,time_to_full_h=10 {ns(hour - 3 * H)}",
            f"bin_1h,device_id=bin-1,site=a fill_pct_last=60,time_to_full_h=8 {ns(hour - 2 * H)}",
            # bin-2 emptied in its newest hour: its older estimate must not show.
            f"bin_1h,device_id=bin-2,site=a fill_pct_last=70,time_to_full_h=3 {ns(hour - 3 * H)}",
            f"bin_1h,device_id=bin-2,site=a fill_pct_last=5,collections=1i {ns(hour - 2 * H)}",
            # bin-3 full: ingest writes no estimate at 100 %; it is 0 hours from full.
            f"bin_1h,device_id=bin-3,site=b fill_pct_last=90,time_to_full_h=1 {ns(hour - 3 * H)}",
            f"bin_1h,device_id=bin-3,site=b fill_pct_last=100 {ns(hour - 2 * H)}",
            f"bin_1h,device_id=bin-4,site=b fill_pct_last=20,time_to_full_h=40 {ns(hour - H)}",
        ],
        "agg",
    )
    influx.write(
        [
            f'device_info,device_id={d},kind=bin,site={s} latitude={lat},longitude=-2.1,status="active"'
            f" {ns(hour - DAY)}"
            for d, s, lat in (("bin-1", "a", 53.1), ("bin-2", "a", 53.2), ("bin-4", "b", 53.4))
        ]
        + [
            f'device_info,device_id=aq-1,kind=air_quality,site=a latitude=1,longitude=1,status="active"'
            f" {ns(hour - DAY)}"
        ],
        "raw",
    )
    now = int(time.time())
    influx.write(
        [
            f"bin,device_id=bin-1,kind=bin,site=a fire_alarm=true {ns(now - 600)}",
            f"bin,device_id=bin-2,kind=bin,site=a fire_alarm=false {ns(now - 300)}",
            f"bin,device_id=bin-3,kind=bin,site=b fire_alarm=true {ns(now - 2 * H)}",  # over
            f"bin,device_id=bin-4,kind=bin,site=b tilt=true {ns(now - 900)}",
            f"bin,device_id=bin-4,kind=bin,site=b tilt=true {ns(now - 800)}",
            f"bin,device_id=bin-2,kind=bin,site=a tilt=false {ns(now - 700)}",
        ],
        "raw",
    )
    assert run(influx, BINS, LIST) == {
        ("bin-1",): [[8, 60]],
        ("bin-2",): [[NOT_FILLING, 5]],
        ("bin-3",): [[0, 100]],
        ("bin-4",): [[40, 20]],
    }
    assert run(influx, BINS, LIST, variables={"site": "b"}) == {
        ("bin-3",): [[0, 100]],
        ("bin-4",): [[40, 20]],
    }
    assert run(influx, BINS, LIST, "B") == {
        ("bin-1", "a"): [[53.1, -2.1]],
        ("bin-2", "a"): [[53.2, -2.1]],
        ("bin-4", "b"): [[53.4, -2.1]],
    }
    assert run(influx, BINS, LIST, "C") == {("bin-1",): [[1]]}
    assert run(influx, BINS, LIST, "D") == {("bin-4",): [[2]]}


def test_footfall_is_set_against_the_same_24_hours_of_each_of_the_four_weeks_before(
    influx: InfluxClient, hour: int
) -> None:
    week = 7 * DAY
    influx.write(
        [
            f"footfall_1h,device_id=ff-1,site=a count_in_sum=10i {ns(hour - H)}",
            f"footfall_1h,device_id=ff-2,site=b count_in_sum=5i {ns(hour - 2 * H)}",
            f"footfall_1h,device_id=ff-1,site=a count_in_sum=20i {ns(hour - week - H)}",
            f"footfall_1h,device_id=ff-1,site=a count_in_sum=1000i {ns(hour - week - DAY - 2 * H)}",
            f"footfall_1h,device_id=ff-1,site=a count_in_sum=30i {ns(hour - 2 * week - 2 * H)}",
            f"footfall_1h,device_id=ff-1,site=a count_in_sum=40i {ns(hour - 3 * week - 3 * H)}",
            f"footfall_1h,device_id=ff-1,site=a count_in_sum=50i {ns(hour - 4 * week - 5 * H)}",
            f"footfall_1h,device_id=ff-1,site=a count_in_sum=7000i {ns(hour - 5 * week)}",
        ],
        "agg",
    )
    answers = {ref: run(influx, "footfall.json", PEOPLE_IN_WEEKS, ref)[()][0][0] for ref in "ABCDE"}
    assert answers == {"A": 15, "B": 20, "C": 30, "D": 40, "E": 50}
    assert run(influx, "footfall.json", PEOPLE_IN_WEEKS, "A", {"site": "b"}) == {(): [[5]]}


def test_steady_footfall_gives_the_same_bar_for_every_week(influx: InfluxClient, hour: int) -> None:
    """100 people every hour, every week: each bar is 24 whole hours, 2400. Ingest writes an
    hour once it has closed, so the hour now running has no point yet, and the last 24 h
    must not be one hour short of the weeks before."""
    week = 7 * DAY
    influx.write(
        [
            f"footfall_1h,device_id=ff-1,site=a count_in_sum=100i {ns(hour - w * week - k * H)}"
            for w in range(5)
            for k in range(0 if w else 1, 30)  # this week: the closed hours only
        ],
        "agg",
    )
    answers = {ref: run(influx, "footfall.json", PEOPLE_IN_WEEKS, ref)[()][0][0] for ref in "ABCDE"}
    assert answers == dict.fromkeys("ABCDE", 2400)


PIPELINE = "pipeline.json"
BALANCE = "Ledger balance: received - written - rejected (0: nothing lost)"


def test_the_ledger_balance_is_zero_for_each_hour_that_lost_nothing(
    influx: InfluxClient, hour: int
) -> None:
    fields = "received={}i,accepted={}i,written={}i,rejected={}i,duplicate={}i,late={}i"
    influx.write(
        [
            # An hour that lost one reading (a bug, if ever seen): received 6, accounted 5.
            f"delivery_ledger,device_id=d3 {fields.format(6, 5, 4, 1, 0, 0)} {ns(hour - 3 * H)}",
            # 10 received: 8 accepted, of which InfluxDB refused 1 (written 7, rejected 2 + 1).
            f"delivery_ledger,device_id=d1 {fields.format(10, 8, 7, 3, 1, 0)} {ns(hour - 2 * H)}",
            f"delivery_ledger,device_id=d2 {fields.format(5, 5, 5, 0, 0, 1)} {ns(hour - 2 * H)}",
            f"delivery_ledger,device_id=d1 {fields.format(4, 4, 4, 0, 0, 0)} {ns(hour - H)}",
        ],
        "raw",
    )
    assert run_timed(influx, PIPELINE, BALANCE) == {
        (): [[hour - 3 * H, 1], [hour - 2 * H, 0], [hour - H, 0]]
    }
    counts = "Delivery ledger per arrival hour: received, written, rejected"
    assert run_timed(influx, PIPELINE, counts) == {
        (): [
            [hour - 3 * H, 6, 4, 1, 0, 0],
            [hour - 2 * H, 15, 12, 3, 1, 1],
            [hour - H, 4, 4, 0, 0, 0],
        ]
    }


def test_rejects_by_reason_count_each_reason_and_show_its_latest_example(
    influx: InfluxClient, hour: int
) -> None:
    now = int(time.time())
    influx.write(
        [
            f'ingest_rejects,reason=invalid_json count=1i,topic="t/a",detail="d{k}",'
            f'payload="p{k}",device_id="aq-{k}" {ns(now - 600 + k)}'
            for k in range(3)
        ]
        + [
            f'ingest_rejects,reason=unknown_device count=1i,topic="t/b",detail="who",'
            f'payload="x" {ns(now - 500)}',
            f'ingest_rejects,reason=invalid_json count=1i,topic="t/old",detail="old",'
            f'payload="o",device_id="aq-9" {ns(now - 2 * DAY)}',  # before the range
        ],
        "raw",
    )
    assert run(influx, "devices.json", "Rejects, by reason") == {
        ("invalid_json",): [[3, "aq-2", "t/a", "d2", "p2"]],
        ("unknown_device",): [[1, None, "t/b", "who", "x"]],
    }
