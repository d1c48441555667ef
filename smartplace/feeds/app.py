"""The open data service: read-only HTTP over the public aggregates (FastAPI).

- ``GET /datasets``: the catalogue of datasets and their columns;
- ``GET /datasets/{name}``: rows by site and time range, as CSV, JSON or
  GeoJSON (``format=`` or the Accept header), a page at a time with a cursor,
  streamed;
- ``GET /sites``: each site as GeoJSON, with its device kinds and latest values;
- ``GET /catalog.jsonld``: a DCAT catalogue a CKAN harvester can read.

Every response carries the Open Government Licence (a ``Link`` header with
rel="license" and an attribution header); errors are ``application/problem+json``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from smartplace import __version__
from smartplace.config import Settings
from smartplace.feeds.catalog import dcat_catalog
from smartplace.feeds.datasets import ATTRIBUTION, DATASETS, LICENCE_URL, Dataset
from smartplace.feeds.render import (
    MEDIA_TYPES,
    Format,
    csv_stream,
    geojson_stream,
    json_stream,
)
from smartplace.feeds.store import (
    MAX_RANGE_NS,
    NS,
    BadCursorError,
    BadWindowError,
    Cursor,
    FeedStore,
    check_window,
    query_digest,
    shape_row,
)
from smartplace.influx import InfluxClient

SITE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
MAX_LIMIT = 100_000
DEFAULT_LIMIT = 10_000
PROBLEM = "application/problem+json"
SITE_DATASETS = ("air-quality-index-hourly", "air-quality-hourly", "footfall-hourly", "bins-daily")
"""The datasets whose latest row /sites shows for each site."""


class Problem(Exception):  # noqa: N818 - it is an RFC 9457 problem, not an error of ours
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


PROBLEM_RESPONSE: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {
            PROBLEM: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                    "required": ["title", "status", "detail"],
                }
            }
        },
    }
    for status, description in (
        (400, "A parameter is wrong: the detail says which and how to fix it"),
        (404, "No such dataset or site"),
        (406, "None of the formats in Accept is served"),
    )
}


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="smartplace open data",
        version=__version__,
        description=(
            "Aggregated readings of Stockport's street sensors: air quality, footfall and"
            f" litter bins. {ATTRIBUTION} ({LICENCE_URL})."
        ),
        license_info={"name": "Open Government Licence v3.0", "url": LICENCE_URL},
    )
    local = threading.local()

    def store() -> FeedStore:
        if not hasattr(local, "store"):
            local.store = FeedStore(InfluxClient(settings.influx))
        found: FeedStore = local.store
        return found

    @app.middleware("http")
    async def licence(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.append("Link", f'<{LICENCE_URL}>; rel="license"')
        response.headers["X-Attribution"] = ATTRIBUTION.encode("latin-1", "replace").decode(
            "latin-1"
        )
        return response

    @app.exception_handler(Problem)
    async def on_problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "query")
        return problem_response(400, "Bad parameter", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code, "Not found" if exc.status_code == 404 else "Error", str(exc.detail)
        )

    @app.get("/datasets", summary="The datasets and their columns", responses=PROBLEM_RESPONSE)
    def list_datasets(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {
            "licence": LICENCE_URL,
            "attribution": ATTRIBUTION,
            "datasets": [describe(dataset, base) for dataset in DATASETS.values()],
        }

    @app.get(
        "/datasets/{name}",
        summary="A dataset's rows, by site and time range",
        response_class=Response,
        responses={
            **PROBLEM_RESPONSE,
            200: {
                "description": "One page of rows (the next page's URL in the Link header)",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}},
                    "application/geo+json": {"schema": {"type": "object"}},
                },
            },
            304: {"description": "Not modified since the copy you have"},
        },
    )
    def dataset_rows(
        request: Request,
        name: Annotated[str, Path(description="A dataset name from /datasets.", max_length=64)],
        site: Annotated[
            str | None,
            Query(description="Only this site (a name from /sites).", pattern=SITE_PATTERN),
        ] = None,
        start: Annotated[
            datetime | None,
            Query(
                alias="from",
                description="Periods starting at or after this (ISO 8601; UTC if no offset).",
            ),
        ] = None,
        end: Annotated[
            datetime | None,
            Query(alias="to", description="Periods starting before this (ISO 8601; default now)."),
        ] = None,
        output: Annotated[
            Format | None,
            Query(
                alias="format", description="csv, json or geojson (else the Accept header; json)."
            ),
        ] = None,
        cursor: Annotated[
            str | None, Query(description="From a previous page's next link.", max_length=512)
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="Rows per page at most.")
        ] = DEFAULT_LIMIT,
    ) -> Response:
        dataset = DATASETS.get(name)
        if dataset is None:
            raise Problem(404, "No such dataset", f"{name!r} is not a dataset; see /datasets")
        chosen = output or negotiate(request.headers.get("accept", ""))
        feed = store()
        sites = feed.sites(dataset)
        if site is not None:
            if site not in sites:
                raise Problem(404, "No such site", f"{site!r} has no {name} data; see /sites")
            sites = [site]
        # The request as written (an open end stays open): its cursors carry the fixed range.
        digest = query_digest(name, site, given_ns(start), given_ns(end), limit)
        try:
            position = Cursor.decode(cursor, digest) if cursor else None
        except BadCursorError as exc:
            raise Problem(400, "Bad cursor", str(exc)) from None
        if position is None:
            start_ns, end_ns = time_range(dataset, start, end)
        else:
            start_ns, end_ns = position.start_ns, position.end_ns
        latest = feed.latest_ns(dataset, sites)
        # The newest period is complete (so last modified) at its end.
        modified = datetime.fromtimestamp(latest // NS + dataset.period_s if latest else 0, UTC)
        etag = (
            '"'
            + hashlib.sha256(f"{digest}|{cursor}|{chosen}|{latest}".encode()).hexdigest()[:32]
            + '"'
        )
        headers = caching_headers(dataset, etag, modified)
        if not_modified(request, etag, modified):
            return Response(status_code=304, headers=headers)
        page = feed.plan(dataset, sites, start_ns, end_ns, limit, position, digest)
        next_url = None
        if page.next is not None:
            next_url = str(request.url.include_query_params(cursor=page.next.encode()))
            headers["Link"] = f'<{next_url}>; rel="next"'

        def rows() -> Iterator[dict[str, Any]]:
            for segment in page.segments:
                yield from feed.rows(dataset, segment)

        if chosen == "csv":
            body = csv_stream(dataset, rows())
        elif chosen == "geojson":
            body = geojson_stream(dataset, rows(), feed.places(), next_url)
        else:
            body = json_stream(dataset, rows(), next_url)
        return StreamingResponse(body, media_type=MEDIA_TYPES[chosen], headers=headers)

    @app.get(
        "/sites",
        summary="Each site, where it is, what it measures, and its latest values",
        responses={
            **PROBLEM_RESPONSE,
            200: {
                "content": {"application/geo+json": {"schema": {"type": "object"}}},
                "description": "Sites",
            },
        },
        response_class=JSONResponse,
    )
    def sites() -> JSONResponse:
        feed = store()
        features = []
        newest = {name: feed.latest_rows(DATASETS[name]) for name in SITE_DATASETS}
        for site, place in sorted(feed.places().items()):
            latest = {
                name: shape_row(DATASETS[name], site, rows[site])
                for name, rows in newest.items()
                if site in rows
            }
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [place.longitude, place.latitude]},
                    "properties": {"site": site, "kinds": place.kinds, "latest": latest},
                }
            )
        body = {"type": "FeatureCollection", "attribution": ATTRIBUTION, "features": features}
        return JSONResponse(
            body,
            media_type="application/geo+json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    @app.get(
        "/catalog.jsonld",
        summary="A DCAT catalogue of the datasets (for CKAN's DCAT harvester)",
        responses={
            **PROBLEM_RESPONSE,
            200: {
                "content": {"application/ld+json": {"schema": {"type": "object"}}},
                "description": "DCAT",
            },
        },
        response_class=JSONResponse,
    )
    def catalog(request: Request) -> JSONResponse:
        feed = store()
        base = str(request.base_url).rstrip("/")
        body = dcat_catalog(base, feed.places())
        return JSONResponse(
            body,
            media_type="application/ld+json",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    return app


def describe(dataset: Dataset, base: str) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "title": dataset.title,
        "description": dataset.description,
        "interval": dataset.interval,
        "columns": [
            {"name": "site", "type": "string", "unit": "", "description": "The site's name"},
            {
                "name": "period_start",
                "type": "string",
                "unit": "",
                "description": "Start, ISO 8601 UTC",
            },
            {
                "name": "period_end",
                "type": "string",
                "unit": "",
                "description": "End, ISO 8601 UTC",
            },
            *(
                {"name": c.name, "type": c.type, "unit": c.unit, "description": c.description}
                for c in dataset.columns
            ),
        ],
        "links": {fmt: f"{base}/datasets/{dataset.name}?format={fmt}" for fmt in MEDIA_TYPES},
    }


def negotiate(accept: str) -> Format:
    """The first format the client accepts, in the order it lists them (q=0 means never)."""
    offered: dict[str, Format] = {
        "text/csv": "csv",
        "text/*": "csv",
        "application/geo+json": "geojson",
        "application/json": "json",
        "application/*": "json",
        "*/*": "json",
    }
    if not accept.strip():
        return "json"
    for part in accept.split(","):
        media, *params = [p.strip().lower() for p in part.split(";")]
        if any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            continue
        if media in offered:
            return offered[media]
    raise Problem(
        406,
        "Not acceptable",
        "this service sends text/csv, application/json or application/geo+json",
    )


def given_ns(moment: datetime | None) -> int | None:
    """A request's time as nanoseconds (UTC if it has no offset), or None when not given.
    Any year Python parses (1 to 9999) converts: the range is checked afterwards."""
    if moment is None:
        return None
    utc = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = utc - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS


def time_range(dataset: Dataset, start: datetime | None, end: datetime | None) -> tuple[int, int]:
    """The request's [from, to) in nanoseconds. No 'to' means now (or 366 days after 'from',
    whichever is sooner); no 'from' means the dataset's default span before 'to'."""
    start_ns, end_ns = given_ns(start), given_ns(end)
    if end_ns is None:
        now_ns = int(time.time()) * NS
        end_ns = now_ns if start_ns is None else min(now_ns, start_ns + MAX_RANGE_NS)
    if start_ns is None:
        start_ns = end_ns - dataset.default_days * 86_400 * NS
    try:
        check_window(start_ns, end_ns)
    except BadWindowError as exc:
        title = "Time range too long" if "366" in str(exc) else "Bad time range"
        raise Problem(400, title, str(exc)) from None
    return start_ns, end_ns


def caching_headers(dataset: Dataset, etag: str, modified: datetime) -> dict[str, str]:
    """Cacheable until the next period could have closed."""
    now = time.time()
    fresh_s = max(60, int(dataset.period_s - now % dataset.period_s))
    return {
        "ETag": etag,
        "Last-Modified": format_datetime(modified, usegmt=True),
        "Cache-Control": f"public, max-age={fresh_s}",
    }


def not_modified(request: Request, etag: str, modified: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return (
            etag in [tag.strip() for tag in if_none_match.split(",")]
            or if_none_match.strip() == "*"
        )
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return parsedate_to_datetime(since) >= modified.replace(microsecond=0)
        except (TypeError, ValueError):
            return False
    return False


def problem_response(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM,
    )
