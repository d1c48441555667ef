"""The feeds service's HTTP as a harvester and a browser use it: CORS, gzip, HEAD, validators
made from the content, refused parameters and out-of-range times.

Its own small database in the real influxd (two sites, two days of hourly footfall with
known counts), so a test may correct a value without touching anyone else's data.
"""

from __future__ import annotations

import base64
import gzip
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx
import pytest
import uvicorn

from smartplace.config import FeedsSettings, InfluxSettings, Settings
from smartplace.feeds.app import create_app
from smartplace.influx import InfluxClient
from smartplace.stack import InfluxdServer, free_port

pytestmark = pytest.mark.integration

PORTAL = "https://portal.example"
START_S = 1_767_225_600  # 2026-01-01 00:00 UTC
HOURS = 48
SITES = ("alpha-street", "beta-square")
DAY = "from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z"
PUBLIC = "https://data.stockport.example/open"


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The service on a free port (uvicorn on a thread), reached over real HTTP."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
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
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def footfall_line(site: str, hour: int, count_in: int, counted_s: int = 3600) -> str:
    ts = (START_S + hour * 3600) * 10**9
    return (
        f"footfall_1h,device_id=ff-{site},site={site} "
        f"count_in_sum={count_in}i,count_out_sum={hour + 10}i,interval_s_sum={counted_s}i {ts}"
    )


@dataclass
class Town:
    base: str
    influx: InfluxClient
    settings: Settings


@pytest.fixture(scope="module")
def town(influxd: InfluxdServer) -> Iterator[Town]:
    influx_settings = InfluxSettings(url=influxd.url, database=f"feedshttp_{uuid.uuid4().hex[:8]}")
    settings = Settings(
        influx=influx_settings,
        feeds=FeedsSettings(cors_origins=[PORTAL], public_base_url=PUBLIC + "/"),
    )
    with InfluxClient(influx_settings) as influx:
        influx.ensure_storage()
        influx.write(
            [footfall_line(site, h, 100 + h) for site in SITES for h in range(HOURS - 1)], "agg"
        )
        # The last hour: alpha-street's counter counted five minutes of it (stopped, say),
        # beta-square's two counters all of it and half of it.
        influx.write(
            [
                footfall_line("alpha-street", HOURS - 1, 20, counted_s=300),
                footfall_line("beta-square", HOURS - 1, 60, counted_s=3600),
                footfall_line("beta-square", HOURS - 1, 30, counted_s=1800).replace(
                    "device_id=ff-beta-square", "device_id=ff-beta-square-2"
                ),
            ],
            "agg",
        )
        with serving(settings) as base:
            yield Town(base, influx, settings)


def test_a_preflight_and_a_cross_origin_get(town: Town) -> None:
    url = f"{town.base}/datasets/footfall-hourly?{DAY}"
    preflight = httpx.options(
        url,
        headers={
            "Origin": PORTAL,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == PORTAL
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "if-none-match" in preflight.headers["access-control-allow-headers"].lower()
    elsewhere = httpx.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert elsewhere.status_code == 400
    assert "access-control-allow-origin" not in elsewhere.headers

    got = httpx.get(url, headers={"Origin": PORTAL})
    assert got.status_code == 200
    assert got.headers["access-control-allow-origin"] == PORTAL
    exposed = {h.strip().lower() for h in got.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "link", "last-modified", "x-attribution"} <= exposed


def test_gzip_when_asked_and_the_same_content(town: Town) -> None:
    url = f"{town.base}/datasets/footfall-hourly?{DAY}&format=csv"
    with httpx.Client() as client:
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        packed = client.send(
            client.build_request("GET", url, headers={"Accept-Encoding": "gzip"}), stream=True
        )
        wire = b"".join(packed.iter_raw())
        packed.close()
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(wire) == plain.content
    assert len(plain.content) == 6_935  # 96 rows
    assert len(wire) < len(plain.content) // 2
    assert packed.headers["vary"].split(", ") == ["Accept", "Accept-Encoding", "Origin"]
    assert plain.headers["etag"] == packed.headers["etag"]


@pytest.mark.parametrize(
    "path",
    [
        "/datasets",
        "/sites",
        "/catalog.jsonld",
        "/catalog.ttl",
        f"/datasets/footfall-hourly?{DAY}&format=csv",
    ],
)
def test_head_and_validators_on_every_resource(town: Town, path: str) -> None:
    got = httpx.get(town.base + path)
    head = httpx.head(town.base + path)
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    for name in ("etag", "last-modified", "content-type"):
        assert head.headers[name] == got.headers[name], name
    assert head.headers["cache-control"].startswith("public, max-age=")
    etag = got.headers["etag"]
    assert etag.startswith('W/"')
    # Weak comparison: the weak tag and its strong form both match.
    for sent in (etag, etag[2:], f'"nothing", {etag}'):
        again = httpx.get(town.base + path, headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.headers["etag"] == etag
    assert httpx.get(town.base + path, headers={"If-None-Match": '"other"'}).status_code == 200
    since = httpx.get(town.base + path, headers={"If-Modified-Since": got.headers["last-modified"]})
    assert since.status_code == 304
    modified = parsedate_to_datetime(got.headers["last-modified"])
    assert modified <= parsedate_to_datetime(got.headers["date"])  # never ahead of now


def test_a_dataset_varies_by_accept(town: Town) -> None:
    url = f"{town.base}/datasets/footfall-hourly?{DAY}"
    as_json = httpx.get(url, headers={"Accept": "text/csv;q=0.5, application/json"})
    as_csv = httpx.get(url, headers={"Accept": "application/json;q=0.2, text/csv;q=0.9"})
    assert as_json.headers["content-type"] == "application/json"
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_json.headers["vary"].split(", ")[0] == "Accept"
    assert as_json.headers["etag"] != as_csv.headers["etag"]


def test_a_correction_to_an_old_value_changes_the_etag_and_defeats_both_validators(
    town: Town,
) -> None:
    url = f"{town.base}/datasets/footfall-hourly?site=alpha-street&{DAY}&format=json"
    first = httpx.get(url)
    assert first.json()["rows"][3]["count_in"] == 103
    # The newest period stays the same: only a value from hours before is corrected.
    town.influx.write([footfall_line("alpha-street", 3, 7)], "agg")
    time.sleep(1.1)  # Last-Modified has a resolution of one second
    after = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200
    assert after.json()["rows"][3]["count_in"] == 7
    assert after.headers["etag"] != first.headers["etag"]
    since = httpx.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 200
    assert parsedate_to_datetime(since.headers["last-modified"]) > parsedate_to_datetime(
        first.headers["last-modified"]
    )


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("sit=alpha-street", "sit: not a parameter here"),
        ("site=alpha-street&site=beta-square", "site: give each once"),
        ("format=csv&callback=x", "callback: not a parameter here"),
    ],
)
def test_unknown_or_repeated_parameters_are_refused(town: Town, query: str, says: str) -> None:
    response = httpx.get(f"{town.base}/datasets/footfall-hourly?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"]
    catalogue = httpx.get(f"{town.base}/catalog.jsonld?page=2")
    assert catalogue.status_code == 400
    assert "page: not a parameter here" in catalogue.json()["detail"]


@pytest.mark.parametrize(
    "query",
    [
        *(
            f"{edge}={year:04d}-01-01T00:00:00Z"
            for year in (1, 1969, 2263, 3000, 9999)
            for edge in ("from", "to")
        ),
        "from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z",
        "from=9999-12-31T23:59:59Z",
        "to=0001-01-01T00:00:00Z",
        "cursor="
        + base64.urlsafe_b64encode(
            b'{"s":"alpha-street","t":9223372036854775807,"q":"x","a":0,"b":9223372036854775807}'
        ).decode(),
        "cursor=" + base64.urlsafe_b64encode(b'{"s":"a","t":1e400,"q":"x","a":0,"b":1}').decode(),
        "cursor=" + base64.urlsafe_b64encode(b'{"s":"a","t":-5,"q":"x","a":-9,"b":1}').decode(),
        "cursor=" + base64.urlsafe_b64encode(b"[1,2,3]").decode(),
        "cursor=" + base64.urlsafe_b64encode(b'{"s":"a","t":"9"}').decode(),
    ],
)
def test_out_of_range_times_and_forged_cursors_get_a_400_problem(town: Town, query: str) -> None:
    response = httpx.get(f"{town.base}/datasets/footfall-hourly?{query}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 400


def test_identity_follows_the_setting_never_the_host_header(town: Town) -> None:
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    catalog = httpx.get(f"{town.base}/catalog.jsonld", headers=evil).json()
    listed = httpx.get(f"{town.base}/datasets", headers=evil).json()
    page = httpx.get(
        f"{town.base}/datasets/footfall-hourly?{DAY}&limit=10&format=json", headers=evil
    )
    urls = [
        catalog["@id"],
        *(d["@id"] for d in catalog["dcat:dataset"]),
        *(
            d[key]["@id"]
            for ds in catalog["dcat:dataset"]
            for d in ds["dcat:distribution"]
            for key in ("dcat:downloadURL", "dcat:accessURL")
        ),
        *(url for d in listed["datasets"] for url in d["links"].values()),
        page.json()["next"],
        page.links["next"]["url"],
    ]
    assert len(urls) >= 1 + 6 + 6 * 3 * 2 + 6 * 3 + 2  # and any monthly archives
    assert [u for u in urls if not u.startswith(PUBLIC + "/")] == []
    assert "evil" not in httpx.get(f"{town.base}/catalog.jsonld", headers=evil).text
    assert page.json()["next"].startswith(
        f"{PUBLIC}/datasets/footfall-hourly?from=2026-01-01T00%3A00%3A00Z&to=2026-01-03T00%3A00%3A00Z&limit=10&format=json&cursor="
    )


def test_a_partial_period_is_marked_incomplete_and_says_how_much_was_counted(town: Town) -> None:
    rows = httpx.get(f"{town.base}/datasets/footfall-hourly?{DAY}&format=json").json()["rows"]
    last = {row["site"]: row for row in rows if row["period_start"] == "2026-01-02T23:00:00Z"}
    assert last["alpha-street"] == {
        "site": "alpha-street",
        "period_start": "2026-01-02T23:00:00Z",
        "period_end": "2026-01-03T00:00:00Z",
        "count_in": 20,
        "count_out": 57,
        "coverage": 0.083,
        "complete": False,
    }
    assert (last["beta-square"]["count_in"], last["beta-square"]["coverage"]) == (90, 0.75)
    assert last["beta-square"]["complete"] is False
    whole = [row for row in rows if row["period_start"] != "2026-01-02T23:00:00Z"]
    assert len(whole) == 2 * (HOURS - 1)
    assert {(row["coverage"], row["complete"]) for row in whole} == {(1.0, True)}
    as_csv = httpx.get(f"{town.base}/datasets/footfall-hourly?{DAY}&format=csv").text
    assert "alpha-street,2026-01-02T23:00:00Z,2026-01-03T00:00:00Z,20,57,0.083,false" in as_csv


def test_the_open_period_is_incomplete(town: Town) -> None:
    now = int(time.time())
    hour = now - now % 3600
    line = footfall_line("alpha-street", (hour - START_S) // 3600, 5, counted_s=3600)
    town.influx.write([line], "agg")
    rows = httpx.get(
        f"{town.base}/datasets/footfall-hourly",
        params={"site": "alpha-street", "from": _iso(hour), "to": _iso(hour + 3600)},
    ).json()["rows"]
    assert [(row["period_start"], row["coverage"], row["complete"]) for row in rows] == [
        (_iso(hour), 1.0, False)
    ]


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_the_privacy_floor_suppresses_small_footfall_counts(town: Town) -> None:
    """Eight quarter hours at a third site holding 0 to 7 people going in (and 7 to 0 out):
    with the default floor of 5, the counts 1 to 4 are published empty; 0 is published."""
    quarter_ns = 900 * 10**9
    town.influx.write(
        [
            f"footfall_15m,device_id=ff-gamma,site=gamma-lane count_in_sum={n}i,"
            f"count_out_sum={7 - n}i,interval_s_sum=900i {START_S * 10**9 + n * quarter_ns}"
            for n in range(8)
        ],
        "agg",
    )
    url = (
        "/datasets/footfall-15min?site=gamma-lane&from=2026-01-01T00:00:00Z&to=2026-01-01T02:00:00Z"
    )

    def counts(base: str) -> list[tuple[int | None, int | None]]:
        rows = httpx.get(f"{base}{url}&format=json").json()["rows"]
        return [(row["count_in"], row["count_out"]) for row in rows]

    assert counts(town.base) == [
        (0, 7),
        (None, 6),
        (None, 5),
        (None, None),
        (None, None),
        (5, None),
        (6, None),
        (7, 0),
    ]
    as_csv = httpx.get(f"{town.base}{url}&format=csv").text.splitlines()
    assert as_csv[4] == "gamma-lane,2026-01-01T00:45:00Z,2026-01-01T01:00:00Z,,,1.0,true"
    for floor, expected in (
        (0, [(n, 7 - n) for n in range(8)]),
        (7, [(0, 7), *[(None, None)] * 6, (7, 0)]),
    ):
        feeds = town.settings.feeds.model_copy(update={"footfall_min_count": floor})
        with serving(town.settings.model_copy(update={"feeds": feeds})) as base:
            assert counts(base) == expected, floor


def test_each_dataset_has_a_table_schema_with_ucum_units_linked_from_the_catalogue(
    town: Town,
) -> None:
    catalog = httpx.get(f"{town.base}/catalog.jsonld").json()
    listed = {d["name"]: d for d in httpx.get(f"{town.base}/datasets").json()["datasets"]}
    units: set[str] = set()
    for entry in catalog["dcat:dataset"]:
        name = entry["dct:identifier"]
        url = entry["dct:conformsTo"]["@id"]
        assert url == f"{PUBLIC}/datasets/{name}/schema"
        assert listed[name]["schema"] == url
        assert {d["dct:conformsTo"]["@id"] for d in entry["dcat:distribution"]} == {url}
        response = httpx.get(f"{town.base}/datasets/{name}/schema")
        assert response.status_code == 200
        assert response.headers["etag"].startswith('W/"')
        schema = response.json()
        names = [field["name"] for field in schema["fields"]]
        assert names == [column["name"] for column in listed[name]["columns"]]
        assert schema["primaryKey"] == ["site", "period_start"]
        assert all(field["description"] for field in schema["fields"])
        units |= {field["unit"] for field in schema["fields"] if "unit" in field}
    assert units == {"ug/m3", "Cel", "%", "1", "{people}"}  # UCUM codes
    footfall = httpx.get(f"{town.base}/datasets/footfall-hourly/schema").json()["fields"]
    assert footfall[3:] == [
        {
            "name": "count_in",
            "type": "integer",
            "description": "People counted going in (empty if fewer than the privacy floor)",
            "unit": "{people}",
        },
        {
            "name": "count_out",
            "type": "integer",
            "description": "People counted going out (empty if fewer than the privacy floor)",
            "unit": "{people}",
        },
        {
            "name": "coverage",
            "type": "number",
            "description": (
                "Share of the period the site's counters counted (their mean; 1 is all of it)"
            ),
            "unit": "1",
        },
        {
            "name": "complete",
            "type": "boolean",
            "description": "Whether the period is whole: it has ended and coverage is at least 0.95",
            "trueValues": ["true"],
            "falseValues": ["false"],
        },
    ]
    header = httpx.get(f"{town.base}/datasets/footfall-hourly?{DAY}&format=csv").text
    assert header.splitlines()[0].split(",") == [
        f["name"]
        for f in httpx.get(f"{town.base}/datasets/footfall-hourly/schema").json()["fields"]
    ]
    missing = httpx.get(f"{town.base}/datasets/nothing/schema")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_the_openapi_describes_every_body(town: Town) -> None:
    spec = httpx.get(f"{town.base}/openapi.json").json()
    rows = spec["paths"]["/datasets/{name}"]["get"]["responses"]["200"]["content"]
    page = rows["application/json"]["schema"]
    assert page["properties"]["rows"]["items"]["required"] == ["site", "period_start", "period_end"]
    assert rows["application/geo+json"]["schema"]["properties"]["type"] == {
        "const": "FeatureCollection"
    }
    for path, media in (
        ("/datasets", "application/json"),
        ("/sites", "application/geo+json"),
        ("/catalog.jsonld", "application/ld+json"),
        ("/datasets/{name}/schema", "application/json"),
    ):
        body = spec["paths"][path]["get"]["responses"]["200"]["content"][media]["schema"]
        assert body["required"], path
        assert body != {"type": "object"}, path


def test_a_months_bulk_file_is_the_whole_month_gzip_csv_listed_in_the_catalogue(
    town: Town,
) -> None:
    url = f"{town.base}/datasets/footfall-hourly/archive/2026-01.csv.gz"
    first, again = httpx.get(url), httpx.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/gzip"
    assert first.headers["content-disposition"] == (
        'attachment; filename="footfall-hourly-2026-01.csv.gz"'
    )
    assert (first.content, first.headers["etag"]) == (again.content, again.headers["etag"])
    whole_month = httpx.get(
        f"{town.base}/datasets/footfall-hourly",
        params={
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-02-01T00:00:00Z",
            "format": "csv",
            "limit": 100_000,
        },
    )
    assert gzip.decompress(first.content) == whole_month.content
    assert len(whole_month.text.splitlines()) == 1 + 2 * HOURS
    assert httpx.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    head = httpx.head(url)
    assert (head.status_code, head.content) == (200, b"")

    catalog = httpx.get(f"{town.base}/catalog.jsonld").json()
    footfall = next(d for d in catalog["dcat:dataset"] if d["dct:identifier"] == "footfall-hourly")
    archives = {
        d["dcat:downloadURL"]["@id"]: d
        for d in footfall["dcat:distribution"]
        if "dcat:compressFormat" in d
    }
    listed = archives[f"{PUBLIC}/datasets/footfall-hourly/archive/2026-01.csv.gz"]
    assert listed["dcat:compressFormat"]["@id"].endswith("/application/gzip")
    assert listed["dcat:mediaType"]["@id"].endswith("/text/csv")
    assert listed["dct:temporal"]["dcat:startDate"]["@value"] == "2026-01-01T00:00:00Z"
    assert listed["dct:temporal"]["dcat:endDate"]["@value"] == "2026-02-01T00:00:00Z"

    for month, status in (("1999-01", 404), ("2025-12", 404), ("2026-13", 400), ("26-01", 400)):
        response = httpx.get(f"{town.base}/datasets/footfall-hourly/archive/{month}.csv.gz")
        assert response.status_code == status, month
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/datasets/", "/sites/", "/datasets/footfall-hourly/"])
def test_a_trailing_slash_never_redirects_to_the_host_header(town: Town, path: str) -> None:
    """Starlette's slash redirect builds its Location from Host: an open redirect to
    whoever the client names. A path with a trailing slash is not found, as a problem."""
    response = httpx.get(f"{town.base}{path}", headers={"Host": "evil.example"})
    assert (response.status_code, response.headers.get("location")) == (404, None)
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("method", ["OPTIONS", "POST", "PUT", "DELETE"])
def test_a_method_not_allowed_says_which_are(town: Town, method: str) -> None:
    """RFC 9110 section 15.5.6: a 405 sends Allow (a plain OPTIONS, without CORS preflight
    headers, included)."""
    response = httpx.request(method, f"{town.base}/datasets/footfall-hourly?{DAY}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["content-type"] == "application/problem+json"


def test_an_if_modified_since_in_the_future_is_ignored(town: Town) -> None:
    """A client whose clock is ahead must not be told forever that its copy is current
    (RFC 9110 section 13.1.3: a date later than the server's time is not a valid one)."""
    url = f"{town.base}/datasets/footfall-hourly?{DAY}&format=csv"
    ahead = httpx.get(url, headers={"If-Modified-Since": "Wed, 01 Jan 2098 00:00:00 GMT"})
    assert (ahead.status_code, len(ahead.content) > 0) == (200, True)
    for path in ("/datasets", "/catalog.ttl"):
        again = httpx.get(
            town.base + path, headers={"If-Modified-Since": "Fri, 01 Jan 2099 00:00:00 GMT"}
        )
        assert again.status_code == 200, path


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip;q=0", False),
        ("deflate, gzip;q=0.0", False),
        ("gzip;q=0, identity", False),
        ("*;q=0", False),
        ("gzip;q=abc", False),
        ("GZIP", True),
        ("x-gzip", True),
        ("br, *;q=0.5", True),
        ("gzip;q=0.001", True),
        ("br, *;q=0.5, gzip;q=0", False),
    ],
)
def test_gzip_only_where_accept_encoding_allows_it(
    town: Town, accept_encoding: str, gzipped: bool
) -> None:
    """RFC 9110 section 12.5.3: q=0 refuses a coding; codings are case-insensitive."""
    url = f"{town.base}/datasets/footfall-hourly?{DAY}&format=csv"
    with httpx.Client() as client:
        plain = client.get(url, headers={"Accept-Encoding": "identity"}).content
        response = client.send(
            client.build_request("GET", url, headers={"Accept-Encoding": accept_encoding}),
            stream=True,
        )
        wire = b"".join(response.iter_raw())
        response.close()
    assert (response.headers.get("content-encoding") == "gzip") is gzipped
    assert (gzip.decompress(wire) if gzipped else wire) == plain
    assert plain.count(b"\r\n") == 97  # a header and 96 rows (another test may correct one)


@pytest.mark.parametrize(
    ("name", "to"),
    [("footfall-hourly", "1970-01-01T00:00:01Z"), ("air-quality-daily", "1970-03-01T00:00:00Z")],
)
def test_a_to_early_in_1970_alone_is_a_fine_request(town: Town, name: str, to: str) -> None:
    """No 'from' means the default span before 'to', which began before 1970 and was
    refused as out of range although the client gave only a valid time."""
    response = httpx.get(f"{town.base}/datasets/{name}", params={"to": to})
    assert (response.status_code, response.json()["rows"]) == (200, [])


def test_fractions_of_a_second_in_from_and_to_count(town: Town) -> None:
    """'from' and 'to' lost their fraction: a period starting half a second before 'from'
    was served, and one starting half a second before 'to' was not."""
    rows = httpx.get(
        f"{town.base}/datasets/footfall-hourly",
        params={
            "site": "alpha-street",
            "from": "2026-01-01T00:00:00.5Z",
            "to": "2026-01-01T03:00:00.5Z",
        },
    ).json()["rows"]
    assert [row["period_start"] for row in rows] == [
        "2026-01-01T01:00:00Z",
        "2026-01-01T02:00:00Z",
        "2026-01-01T03:00:00Z",
    ]


def test_the_openapi_names_the_public_address_as_its_server(town: Town) -> None:
    """With no servers an OpenAPI client calls the host it fetched the document from, at
    the root: behind the public address's path prefix (/open) every call missed."""
    document = httpx.get(f"{town.base}/openapi.json", headers={"Host": "evil.example"}).json()
    assert document["servers"] == [{"url": PUBLIC}]


def test_every_answer_varies_by_accept_encoding_a_304_too(town: Town) -> None:
    """A 304 sends the Vary its 200 would (RFC 9110 section 15.4.5): a cache takes a 304's
    headers onto the copy it stored, so a gzip body whose Vary lost Accept-Encoding would
    go to clients that cannot read it."""
    url = f"{town.base}/datasets/footfall-hourly?{DAY}&format=csv"
    packed = httpx.get(url, headers={"Accept-Encoding": "gzip"})
    again = httpx.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["etag"]}
    )
    plain = httpx.get(url, headers={"Accept-Encoding": "identity"})
    assert again.status_code == 304
    for response in (packed, again, plain):
        assert "Accept-Encoding" in response.headers["vary"].split(", "), response.status_code
