"""The open data service over a simulated week in the real influxd, spoken to over real HTTP."""

from __future__ import annotations

import base64
import csv
import io
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import orjson
import pytest
import uvicorn

from smartplace.config import FeedsSettings
from smartplace.feeds.app import create_app
from smartplace.feeds.datasets import ATTRIBUTION, LICENCE_URL
from smartplace.stack import free_port
from tests.integration.conftest import SimulatedTown

pytestmark = pytest.mark.integration

SITE = "merseyway"


@pytest.fixture(scope="module")
def feeds(simulated_town: SimulatedTown) -> Iterator[str]:
    """The service on a free port (uvicorn on a thread), as a portal would reach it."""
    port = free_port()
    public = FeedsSettings(public_base_url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(simulated_town.settings.model_copy(update={"feeds": public})),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            date_header=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the feeds service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def expected_footfall_hourly(
    town: SimulatedTown, site: str, start: int, end: int, period: int = 3600
) -> list[dict[str, object]]:
    """From the simulator's record alone: people in and out per period (an hour unless
    told) at the site, for the periods starting in [start, end), and how much of each
    period was counted (the mean over the site's counters of their seconds counted)."""
    site_of = town.site_of()
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    counted: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in town.records:
        if record["kind"] != "footfall" or not record["sent"]:
            continue
        if {"malformed", "out_of_range", "wrong_topic"} & set(record["faults"]):
            continue  # rejected by ingest, as they should be
        if site_of[record["device_id"]] != site:
            continue
        begins = record["ts"] - record["ts"] % period
        if not start <= begins < end:
            continue
        hour = hours[begins]
        hour[0] += record["values"]["count_in"]
        hour[1] += record["values"]["count_out"]
        counted[begins][record["device_id"]] += record["values"]["interval_s"]
    rows: list[dict[str, object]] = []
    for hour, counts in sorted(hours.items()):
        per_counter = counted[hour].values()
        coverage = round(sum(per_counter) / len(per_counter) / period, 3)
        rows.append(
            {
                "site": site,
                "period_start": _iso(hour),
                "period_end": _iso(hour + period),
                "count_in": floored(counts[0]),
                "count_out": floored(counts[1]),
                "coverage": coverage,
                "complete": hour + period <= time.time() and coverage >= 0.95,
            }
        )
    return rows


def floored(count: int) -> int | None:
    """The privacy floor (the default, 5): 1 to 4 people are published empty."""
    return None if 0 < count < 5 else count


def typed(row: dict[str, str]) -> dict[str, object]:
    """A footfall CSV row with its numbers and flag as JSON has them."""
    assert row["complete"] in ("true", "false")
    return {
        **row,
        "count_in": int(row["count_in"]) if row["count_in"] else None,
        "count_out": int(row["count_out"]) if row["count_out"] else None,
        "coverage": float(row["coverage"]),
        "complete": row["complete"] == "true",
    }


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_range(town: SimulatedTown) -> tuple[int, int]:
    """A whole UTC day in the middle of the simulated week."""
    newest = max(r["ts"] for r in town.records)
    start = newest - newest % 86_400 - 3 * 86_400
    return start, start + 86_400


def test_csv_json_and_geojson_hold_exactly_the_expected_rows(
    feeds: str, simulated_town: SimulatedTown
) -> None:
    start, end = day_range(simulated_town)
    expected = expected_footfall_hourly(simulated_town, SITE, start, end)
    assert len(expected) == 24
    params = {"site": SITE, "from": _iso(start), "to": _iso(end)}
    url = f"{feeds}/datasets/footfall-hourly"

    as_csv = httpx.get(url, params={**params, "format": "csv"})
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert list(rows[0]) == [
        "site",
        "period_start",
        "period_end",
        "count_in",
        "count_out",
        "coverage",
        "complete",
    ]
    assert [typed(r) for r in rows] == expected

    as_json = httpx.get(url, params=params, headers={"Accept": "application/json"}).json()
    assert as_json["rows"] == expected
    assert (as_json["licence"], as_json["attribution"], as_json["next"]) == (
        LICENCE_URL,
        ATTRIBUTION,
        None,
    )

    as_geojson = httpx.get(url, params=params, headers={"Accept": "application/geo+json"}).json()
    assert as_geojson["type"] == "FeatureCollection"
    assert [f["properties"] for f in as_geojson["features"]] == expected
    (lon, lat) = as_geojson["features"][0]["geometry"]["coordinates"]
    merseyway = next(s for s in simulated_town.fleet.sites if s.name == SITE)
    assert (lat, lon) == (merseyway.latitude, merseyway.longitude)


def test_pages_join_up_to_the_whole_range(feeds: str, simulated_town: SimulatedTown) -> None:
    start, end = day_range(simulated_town)
    url = f"{feeds}/datasets/footfall-hourly?from={_iso(start)}&to={_iso(end)}&limit=7&format=json"
    seen: list[dict[str, object]] = []
    pages = 0
    while url:
        page = httpx.get(url).json()
        assert len(page["rows"]) <= 7
        seen += page["rows"]
        url = page["next"]
        pages += 1
    sites = sorted({s.name for s in simulated_town.fleet.sites})
    expected = [
        row for site in sites for row in expected_footfall_hourly(simulated_town, site, start, end)
    ]
    assert seen == expected
    assert pages == -(-len(expected) // 7)


def test_a_harvest_of_the_catalogues_url_pages_to_the_end_with_no_gap_or_duplicate(
    feeds: str, simulated_town: SimulatedTown
) -> None:
    """As a portal harvests: the catalogue's download URL (no from or to), a page at a time,
    two seconds apart. The open end is fixed by the first page, so the pages join up."""
    catalog = httpx.get(f"{feeds}/catalog.jsonld").json()
    footfall = next(d for d in catalog["dcat:dataset"] if d["dct:identifier"] == "footfall-15min")
    download = next(
        d["dcat:downloadURL"]["@id"]
        for d in footfall["dcat:distribution"]
        if d["dcat:downloadURL"]["@id"].endswith("format=csv")
    )
    url = f"{download}&limit=1200"
    pages: list[list[dict[str, str]]] = []
    windows: list[tuple[int, int]] = []
    while url:
        if pages:
            time.sleep(2)  # a harvester's pause: "now" moves on between pages
        response = httpx.get(url)
        assert response.status_code == 200, response.text
        pages.append(list(csv.DictReader(io.StringIO(response.text))))
        url = response.links.get("next", {}).get("url", "")
        if url:
            text = url.split("cursor=")[1]
            fixed = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            windows.append((fixed["a"] // 10**9, fixed["b"] // 10**9))
    # Five footfall sites, a week of 15-minute periods (the newest may not have begun).
    assert [len(page) for page in pages[:2]] == [1200, 1200]
    assert 5 * 670 <= sum(map(len, pages)) <= 5 * 672 < 3 * 1200
    # Every page's cursor carries the week the first page fixed, 4 s before the last.
    assert len(windows) == 2
    assert windows[0] == windows[1]
    start, end = windows[0]
    assert end - start == 7 * 86_400
    seen = [typed(r) for page in pages for r in page]
    keys = [(r["site"], r["period_start"]) for r in seen]
    assert len(keys) == len(set(keys))  # no duplicate
    sites = sorted({s.name for s in simulated_town.fleet.sites})
    expected = [
        row
        for site in sites
        for row in expected_footfall_hourly(simulated_town, site, start, end, period=900)
    ]
    assert seen == expected  # no gap: every period of the fixed week, once, in order


def test_every_response_carries_the_licence(feeds: str) -> None:
    for path in ("/datasets", "/sites", "/catalog.jsonld", "/catalog.ttl", "/datasets/nothing"):
        response = httpx.get(feeds + path)
        assert f'<{LICENCE_URL}>; rel="license"' in response.headers.get_list("link"), path
        assert response.headers["x-attribution"].startswith("Contains public sector information")


def test_conditional_requests_get_304(feeds: str, simulated_town: SimulatedTown) -> None:
    start, end = day_range(simulated_town)
    url = f"{feeds}/datasets/air-quality-hourly?site={SITE}&from={_iso(start)}&to={_iso(end)}&format=csv"
    first = httpx.get(url)
    assert first.status_code == 200
    assert first.headers["cache-control"].startswith("public, max-age=")
    again = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    since = httpx.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304
    other = httpx.get(
        url.replace("format=csv", "format=json"), headers={"If-None-Match": first.headers["etag"]}
    )
    assert other.status_code == 200


def test_sites_and_catalogue(feeds: str, simulated_town: SimulatedTown) -> None:
    sites = httpx.get(f"{feeds}/sites").json()
    names = sorted(f["properties"]["site"] for f in sites["features"])
    assert names == sorted(s.name for s in simulated_town.fleet.sites)
    merseyway = next(f for f in sites["features"] if f["properties"]["site"] == SITE)
    assert merseyway["properties"]["kinds"] == ["air_quality", "bin", "footfall"]
    assert set(merseyway["properties"]["latest"]) >= {"air-quality-hourly", "footfall-hourly"}

    catalog = httpx.get(f"{feeds}/catalog.jsonld").json()
    assert catalog["@type"] == "dcat:Catalog"
    assert catalog["dct:license"]["@id"] == LICENCE_URL
    names = [d["dct:identifier"] for d in catalog["dcat:dataset"]]
    assert "footfall-hourly" in names
    listed = httpx.get(f"{feeds}/datasets").json()["datasets"]
    footfall_intervals = {d["interval"] for d in listed if d["name"].startswith("footfall")}
    assert footfall_intervals == {"PT15M", "PT1H"}  # never finer: small counts identify people
    footfall = next(d for d in catalog["dcat:dataset"] if d["dct:identifier"] == "footfall-hourly")
    assert {d["dcat:mediaType"]["@id"] for d in footfall["dcat:distribution"]} == {
        "https://www.iana.org/assignments/media-types/text/csv",
        "https://www.iana.org/assignments/media-types/application/json",
        "https://www.iana.org/assignments/media-types/application/geo+json",
    }
    assert footfall["dct:accrualPeriodicity"]["@id"].endswith("HOURLY")


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("/datasets/nothing", 404, "is not a dataset"),
        ("/datasets/footfall-hourly?site=nowhere", 404, "has no footfall-hourly data"),
        (
            "/datasets/footfall-hourly?from=2026-02-01T00:00Z&to=2026-01-01T00:00Z",
            400,
            "'from' must be before 'to'",
        ),
        (
            "/datasets/footfall-hourly?from=2020-01-01T00:00Z&to=2026-01-01T00:00Z",
            400,
            "at most 366 days",
        ),
        ("/datasets/footfall-hourly?from=yesterday", 400, "from"),
        ("/datasets/footfall-hourly?cursor=not-a-cursor", 400, "not one this service gave out"),
        ("/datasets/footfall-hourly?format=xlsx", 400, "format"),
        ("/datasets/footfall-hourly?limit=0", 400, "limit"),
        ("/datasets/footfall-hourly?limit=1000001", 400, "limit"),
    ],
)
def test_bad_input_gets_a_problem_saying_what_to_fix(
    feeds: str, query: str, status: int, says: str
) -> None:
    response = httpx.get(feeds + query)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert says in problem["detail"]


def test_an_unservable_accept_header_gets_406(feeds: str) -> None:
    response = httpx.get(f"{feeds}/datasets/footfall-hourly", headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/problem+json"


def test_a_cursor_from_another_query_is_refused(feeds: str, simulated_town: SimulatedTown) -> None:
    start, end = day_range(simulated_town)
    page = httpx.get(
        f"{feeds}/datasets/footfall-hourly?from={_iso(start)}&to={_iso(end)}&limit=5&format=json"
    ).json()
    cursor = page["next"].split("cursor=")[1]
    response = httpx.get(f"{feeds}/datasets/air-quality-hourly?cursor={cursor}")
    assert response.status_code == 400
    assert "belongs to another query" in response.json()["detail"]


@pytest.fixture(scope="module")
def feeds_schema(feeds: str) -> object:
    import schemathesis

    return schemathesis.openapi.from_url(f"{feeds}/openapi.json")


INJECTIONS = [
    "'",
    '"',
    "merseyway'; DROP DATABASE smartplace; --",
    "merseyway' OR 1=1 --",
    'merseyway" OR "1"="1',
    "merseyway OR 1=1",
    "/.*/",
    "merseyway|.*",
    "merseyway;SHOW DATABASES",
    "$site",
    "merseyway\nDROP SERIES FROM air_quality",
]


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("parameter", ["site", "from", "to", "format", "cursor", "limit", "name"])
def test_injection_attempts_are_refused_and_change_nothing(
    feeds: str, simulated_town: SimulatedTown, parameter: str, payload: str
) -> None:
    if parameter == "name":
        response = httpx.get(f"{feeds}/datasets/{quote(payload, safe='')}")
    else:
        response = httpx.get(f"{feeds}/datasets/footfall-hourly", params={parameter: payload})
    assert 400 <= response.status_code < 500, (parameter, payload, response.text)
    assert response.headers["content-type"] == "application/problem+json"


def test_the_data_is_still_all_there_after_the_injection_attempts(
    feeds: str, simulated_town: SimulatedTown
) -> None:
    start, end = day_range(simulated_town)
    rows = httpx.get(
        f"{feeds}/datasets/footfall-hourly",
        params={"site": SITE, "from": _iso(start), "to": _iso(end), "format": "json"},
    ).json()["rows"]
    assert rows == expected_footfall_hourly(simulated_town, SITE, start, end)
