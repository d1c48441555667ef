"""How whole an air-quality or bin period is, from the finer windows stored beside it.

Its own database in the real influxd: one monitor sending one reading in an hour, one
sending for two quarter hours of a day, one bin reporting six hours of a day, and whole
periods beside them, so every coverage below is known exactly.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from smartplace.config import InfluxSettings, Settings
from smartplace.influx import InfluxClient
from smartplace.stack import InfluxdServer
from tests.integration.test_feeds_http import serving

pytestmark = pytest.mark.integration

DAY_S = 1_767_225_600  # 2026-01-01 00:00 UTC
NS = 10**9
RANGE = "from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z"


def aq(measurement: str, device: str, start_s: int, count: int = 6) -> str:
    return (
        f"{measurement},device_id={device},site=hillgate pm25_ugm3_mean=8.0,pm10_ugm3_mean=12.0,"
        f"pm25_ugm3_count={count}i {start_s * NS}"
    )


def bin_point(measurement: str, start_s: int) -> str:
    return (
        f"{measurement},device_id=bin-1,site=hillgate fill_pct_max=40.0,collections=0i"
        f" {start_s * NS}"
    )


@pytest.fixture(scope="module")
def base(influxd: InfluxdServer) -> Iterator[str]:
    influx_settings = InfluxSettings(url=influxd.url, database=f"feedscov_{uuid.uuid4().hex[:8]}")
    lines = []
    # Day one, hour 0: the monitor sent all day (every quarter hour); hour 1 it sent once.
    for quarter in range(96):
        start = DAY_S + quarter * 900
        lines.append(aq("air_quality_15m", "aq-1", start))
    for hour in range(24):
        lines.append(aq("air_quality_1h", "aq-1", DAY_S + hour * 3600, 24))
    lines.append(aq("air_quality_1d", "aq-1", DAY_S, 24 * 24))
    # Day two: a graceful stop after 26 readings in the first two quarter hours.
    lines += [aq("air_quality_15m", "aq-1", DAY_S + 86_400 + q * 900, 13) for q in range(2)]
    lines.append(aq("air_quality_1h", "aq-1", DAY_S + 86_400, 26))
    lines.append(aq("air_quality_1d", "aq-1", DAY_S + 86_400, 26))
    # A second monitor, on day two only, for one reading in hour 0's first quarter.
    lines.append(aq("air_quality_15m", "aq-2", DAY_S + 86_400, 1))
    lines.append(aq("air_quality_1h", "aq-2", DAY_S + 86_400, 1))
    lines.append(aq("air_quality_1d", "aq-2", DAY_S + 86_400, 1))
    # A gas-only monitor (no PM fields at all) at a site of its own, for ten hours.
    lines += [
        f"air_quality_1h,device_id=gas-1,site=gas-works no2_ugm3_mean={20 + h}.0,no2_ugm3_count=4i"
        f" {(DAY_S + h * 3600) * NS}"
        for h in range(10)
    ]
    # Bins: day one every hour, day two six hours.
    lines += [bin_point("bin_1h", DAY_S + h * 3600) for h in range(24)]
    lines += [bin_point("bin_1h", DAY_S + 86_400 + h * 3600) for h in range(6)]
    lines += [bin_point("bin_1d", DAY_S), bin_point("bin_1d", DAY_S + 86_400)]
    with InfluxClient(influx_settings) as influx:
        influx.ensure_storage()
        influx.write(lines, "agg")
        with serving(Settings(influx=influx_settings)) as url:
            yield url


def rows(base: str, name: str) -> list[tuple[str, float | None, bool]]:
    found = httpx.get(f"{base}/datasets/{name}?site=hillgate&{RANGE}&format=json").json()["rows"]
    return [(row["period_start"], row["coverage"], row["complete"]) for row in found]


def test_a_partial_hour_of_air_quality_is_marked(base: str) -> None:
    found = rows(base, "air-quality-hourly")
    assert found[:2] == [("2026-01-01T00:00:00Z", 1.0, True), ("2026-01-01T01:00:00Z", 1.0, True)]
    # Day two's first hour: aq-1 sent in two quarters of four, aq-2 in one: (2 + 1) / 2 / 4.
    assert found[24:] == [("2026-01-02T00:00:00Z", 0.375, False)]


def test_a_partial_day_of_air_quality_and_of_bins_is_marked(base: str) -> None:
    assert rows(base, "air-quality-daily") == [
        ("2026-01-01T00:00:00Z", 1.0, True),
        ("2026-01-02T00:00:00Z", 0.016, False),  # (2 + 1) / 2 of 96 quarter hours
    ]
    assert rows(base, "bins-daily") == [
        ("2026-01-01T00:00:00Z", 1.0, True),
        ("2026-01-02T00:00:00Z", 0.25, False),  # 6 of 24 hours
    ]


def test_coverage_is_the_last_csv_column(base: str) -> None:
    text = httpx.get(f"{base}/datasets/air-quality-daily?site=hillgate&{RANGE}&format=csv").text
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][-3:] == ["readings", "complete", "coverage"]
    assert table[2][-3:] == ["27", "false", "0.016"]


def test_sites_shows_the_latest_rows_coverage(base: str, influxd: InfluxdServer) -> None:
    """/sites looks back from now: yesterday's bin day, reported for two of its 24 hours."""
    settings = InfluxSettings(url=influxd.url, database=f"feedscov_{uuid.uuid4().hex[:8]}")
    today = int(time.time()) // 86_400 * 86_400 - 86_400  # yesterday: ended, not whole
    with InfluxClient(settings) as influx:
        influx.ensure_storage()
        influx.write(
            [
                bin_point("bin_1h", today),
                bin_point("bin_1h", today + 3600),
                bin_point("bin_1d", today),
            ],
            "agg",
        )
        influx.write(
            ["device_info,device_id=bin-1,kind=bin,site=hillgate latitude=53.4,longitude=-2.15"],
            "raw",
        )
        with serving(Settings(influx=settings)) as url:
            features = httpx.get(f"{url}/sites").json()["features"]
    latest = features[0]["properties"]["latest"]["bins-daily"]
    assert (latest["coverage"], latest["complete"]) == (0.083, False)


def test_coverage_is_in_geojson_the_table_schema_and_the_openapi(base: str) -> None:
    geo = httpx.get(f"{base}/datasets/bins-daily?{RANGE}&format=geojson").json()
    assert [f["properties"]["coverage"] for f in geo["features"]] == [1.0, 0.25]
    fields = httpx.get(f"{base}/datasets/air-quality-hourly/schema").json()["fields"]
    assert fields[-1] == {
        "name": "coverage",
        "type": "number",
        "description": "Share of the period's 15-minute windows in which the site's monitors"
        " sent a reading (their mean; 1 is all of them)",
        "unit": "1",
    }
    assert fields[-2]["description"] == (
        "Whether the period is whole: it has ended and coverage is at least 0.95"
    )
    row = httpx.get(f"{base}/openapi.json").json()["paths"]["/datasets/{name}"]["get"]
    page = row["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["properties"]["rows"]["items"]["properties"]["coverage"]["maximum"] == 1


@pytest.mark.parametrize("site", ["gas-works", None])
def test_a_page_keeps_its_limit_when_rows_lack_the_first_column(
    base: str, site: str | None
) -> None:
    """Rows were counted by their first column (PM2.5): a gas-only monitor's ten rows counted
    as none, so a page of at most 3 held all ten. Every page holds at most its limit, and
    the pages join up."""
    url: str | None = f"{base}/datasets/air-quality-hourly?{RANGE}&limit=3&format=json"
    if site:
        url = f"{url}&site={site}"
    sizes, seen = [], []
    while url:
        page = httpx.get(url).json()
        sizes.append(len(page["rows"]))
        seen += [(row["site"], row["period_start"]) for row in page["rows"]]
        url = page["next"] and page["next"].replace("http://127.0.0.1:8000", base)
    expected = 10 + (0 if site else 25)  # hillgate: 24 hours on day one, 1 on day two
    assert (len(seen), len(set(seen)), max(sizes)) == (expected, expected, 3)
    assert sizes == [3] * (expected // 3) + ([expected % 3] if expected % 3 else [])


def test_a_to_inside_a_period_still_counts_the_whole_period(base: str) -> None:
    """The hour from 01:00 is served when 'to' is 01:30 (it starts before 'to'): its coverage
    is of the whole hour, not of the half before 'to'."""
    found = httpx.get(
        f"{base}/datasets/air-quality-hourly",
        params={"site": "hillgate", "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:30:00Z"},
    ).json()["rows"]
    assert [(row["period_start"], row["coverage"], row["complete"]) for row in found] == [
        ("2026-01-01T00:00:00Z", 1.0, True),
        ("2026-01-01T01:00:00Z", 1.0, True),
    ]
