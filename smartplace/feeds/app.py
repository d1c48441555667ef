"""The open data service: read-only HTTP over the public aggregates (FastAPI).

- ``GET /datasets``: the catalogue of datasets and their columns;
- ``GET /datasets/{name}``: rows by site and time range, as CSV, JSON or
  GeoJSON (``format=`` or the Accept header), a page at a time with a cursor,
  streamed;
- ``GET /sites``: each site as GeoJSON, with its device kinds and latest values;
- ``GET /catalog.jsonld`` and ``/catalog.ttl``: a DCAT-AP 3 catalogue a CKAN harvester
  reads in full.

Every response carries the Open Government Licence (a ``Link`` header with
rel="license" and an attribution header); errors are ``application/problem+json``.
"""

from __future__ import annotations

import gzip
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Match

from smartplace import __version__
from smartplace.config import Settings
from smartplace.feeds.archive import MONTH_PATTERN, BadMonthError, month_range_ns
from smartplace.feeds.catalog import Extent, dcat_catalog, turtle
from smartplace.feeds.datasets import ATTRIBUTION, DATASETS, LICENCE_URL, Dataset
from smartplace.feeds.dictionary import (
    CATALOG,
    DATASETS_LIST,
    GEO_PAGE,
    PAGE,
    SITES,
    TABLE_SCHEMA,
    table_schema,
)
from smartplace.feeds.http import (
    AcceptEncodingMiddleware,
    ModifiedBook,
    NotAcceptableError,
    accepted,
    etag_of,
    http_date,
    not_modified,
    repeated_parameters,
    unknown_parameters,
)
from smartplace.feeds.render import (
    MEDIA_TYPES,
    Format,
    csv_stream,
    geojson_stream,
    json_stream,
)
from smartplace.feeds.store import (
    EARLIEST_NS,
    MAX_RANGE_NS,
    NS,
    BadCursorError,
    BadWindowError,
    Cursor,
    FeedStore,
    Segment,
    check_window,
    query_digest,
    shape_row,
)
from smartplace.influx import InfluxClient

SITE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
MAX_LIMIT = 100_000
DEFAULT_LIMIT = 10_000
PROBLEM = "application/problem+json"
SPOOL_MEMORY_BYTES = 8 << 20
"""A page's body is rendered (and hashed, for its ETag) before it is sent: up to this much
in memory, the rest in a temporary file, so a page of any size costs bounded memory."""
READ_BYTES = 64 << 10
DATASET_PARAMETERS = ("site", "from", "to", "format", "cursor", "limit")
OFFERED: dict[str, Format] = {
    "application/json": "json",
    "text/csv": "csv",
    "application/geo+json": "geojson",
}
"""What a dataset is served as, by media type, in the order preferred when Accept ties."""
SITE_DATASETS = ("air-quality-index-hourly", "air-quality-hourly", "footfall-hourly", "bins-daily")
"""The datasets whose latest row /sites shows for each site."""


class Problem(Exception):  # noqa: N818 - it is an RFC 9457 problem, not an error of ours
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


NOT_MODIFIED: dict[str, Any] = {"description": "Not modified: the copy you have is this one"}
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
    """The service; run it with the server's own Date header off (uvicorn's
    ``date_header=False``): each response sets Date itself."""
    base = settings.feeds.public_base_url.rstrip("/")
    app = FastAPI(
        # OpenAPI clients call this, not the host (and root) they read the document from.
        servers=[{"url": base}],
        title="smartplace open data",
        version=__version__,
        description=(
            "Aggregated readings of Stockport's street sensors: air quality, footfall and"
            f" litter bins. {ATTRIBUTION} ({LICENCE_URL})."
        ),
        license_info={"name": "Open Government Licence v3.0", "url": LICENCE_URL},
        # Starlette's slash redirect takes its Location from the Host header: an open
        # redirect to any host a client names. A trailing slash is simply not found.
        redirect_slashes=False,
    )
    local = threading.local()
    book = ModifiedBook()
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(AcceptEncodingMiddleware)  # outside the gzip: it reads what this says
    # Outermost, so a preflight is answered before anything else looks at it.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.feeds.cors_origins,
        allow_methods=["GET", "HEAD"],
        allow_headers=["Accept", "Accept-Encoding", "If-None-Match", "If-Modified-Since"],
        expose_headers=["ETag", "Last-Modified", "Link", "X-Attribution"],
        max_age=86_400,
    )

    def validated(
        request: Request, body: bytes, media_type: str, max_age_s: int, vary: bool = False
    ) -> Response:
        """A whole body with its validators, or 304 when the client's copy is this one."""
        etag = etag_of(body)
        modified = book.modified(_request_key(request), etag)
        headers = {
            "ETag": etag,
            "Last-Modified": http_date(modified),
            "Cache-Control": f"public, max-age={max_age_s}",
        }
        if vary:
            headers["Vary"] = "Accept"
        if not_modified(request.headers, etag, modified):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media_type, headers=headers)

    def store() -> FeedStore:
        if not hasattr(local, "store"):
            local.store = FeedStore(
                InfluxClient(settings.influx.for_reading()), settings.feeds.footfall_min_count
            )
        found: FeedStore = local.store
        return found

    @app.middleware("http")
    async def licence(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        # Our own Date, taken after Last-Modified was (the server's is cached a second).
        response.headers["Date"] = http_date(datetime.now(UTC))
        response.headers.append("Link", f'<{LICENCE_URL}>; rel="license"')
        # Whether gzipped or not, and on a 304 too: a cache must key every copy by it.
        varies = {v.strip().lower() for v in response.headers.get("vary", "").split(",")}
        if "accept-encoding" not in varies:
            response.headers.add_vary_header("Accept-Encoding")
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
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem_response(
            exc.status_code, "Not found" if exc.status_code == 404 else "Error", str(exc.detail)
        )
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # Every method of every route at this path (GET and HEAD are routes of their
            # own here), not only the first route's: RFC 9110 section 15.5.6.
            response.headers["Allow"] = ", ".join(allowed_methods(app, request))
        return response

    @get_and_head(
        app,
        "/datasets",
        summary="The datasets and their columns",
        responses={
            **PROBLEM_RESPONSE,
            304: NOT_MODIFIED,
            200: {
                "description": "The datasets",
                "content": {"application/json": {"schema": DATASETS_LIST}},
            },
        },
        response_class=JSONResponse,
        dependencies=[Depends(only())],
    )
    def list_datasets(request: Request) -> Response:
        body = {
            "licence": LICENCE_URL,
            "attribution": ATTRIBUTION,
            "datasets": [describe(dataset, base) for dataset in DATASETS.values()],
        }
        return validated(request, orjson.dumps(body), "application/json", 3600)

    @get_and_head(
        app,
        "/datasets/{name}",
        summary="A dataset's rows, by site and time range",
        response_class=Response,
        dependencies=[Depends(only(*DATASET_PARAMETERS))],
        responses={
            **PROBLEM_RESPONSE,
            200: {
                "description": "One page of rows (the next page's URL in the Link header)",
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {"schema": PAGE},
                    "application/geo+json": {"schema": GEO_PAGE},
                },
            },
            304: NOT_MODIFIED,
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
        page = feed.plan(dataset, sites, start_ns, end_ns, limit, position, digest)
        headers = {"Cache-Control": f"public, max-age={fresh_s(dataset)}", "Vary": "Accept"}
        next_url = None
        if page.next is not None:
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
            query = urlencode([*kept, ("cursor", page.next.encode())])
            next_url = f"{base}{request.url.path}?{query}"
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
        spool, etag, size = spooled(body)
        latest = feed.latest_ns(dataset, sites)
        # The newest period could change until it ends; a body first seen is dated then.
        newest_s = latest // NS + dataset.period_s if latest is not None else None
        modified = book.modified(_request_key(request, chosen), etag, newest_s)
        headers |= {"ETag": etag, "Last-Modified": http_date(modified)}
        if not_modified(request.headers, etag, modified):
            spool.close()
            return Response(status_code=304, headers=headers)
        headers["Content-Length"] = str(size)
        return StreamingResponse(read_out(spool), media_type=MEDIA_TYPES[chosen], headers=headers)

    @get_and_head(
        app,
        "/datasets/{name}/schema",
        summary="A dataset's Table Schema: its columns, types, UCUM units and meaning",
        dependencies=[Depends(only())],
        responses={
            **PROBLEM_RESPONSE,
            304: NOT_MODIFIED,
            200: {
                "description": "A Frictionless Table Schema",
                "content": {"application/json": {"schema": TABLE_SCHEMA}},
            },
        },
        response_class=JSONResponse,
    )
    def dataset_schema(
        request: Request,
        name: Annotated[str, Path(description="A dataset name from /datasets.", max_length=64)],
    ) -> Response:
        dataset = DATASETS.get(name)
        if dataset is None:
            raise Problem(404, "No such dataset", f"{name!r} is not a dataset; see /datasets")
        return validated(request, orjson.dumps(table_schema(dataset)), "application/json", 3600)

    @get_and_head(
        app,
        "/datasets/{name}/archive/{month}.csv.gz",
        summary="A dataset's whole month, every site, as one gzip CSV (for bulk copies)",
        dependencies=[Depends(only())],
        response_class=Response,
        responses={
            **PROBLEM_RESPONSE,
            304: NOT_MODIFIED,
            200: {
                "description": "The month's rows, sites in order then time, gzip CSV",
                "content": {"application/gzip": {"schema": {"type": "string"}}},
            },
        },
    )
    def dataset_archive(
        request: Request,
        name: Annotated[str, Path(description="A dataset name from /datasets.", max_length=64)],
        month: Annotated[str, Path(description="YYYY-MM (UTC).", pattern=MONTH_PATTERN)],
    ) -> Response:
        dataset = DATASETS.get(name)
        if dataset is None:
            raise Problem(404, "No such dataset", f"{name!r} is not a dataset; see /datasets")
        try:
            start_ns, end_ns = month_range_ns(month)
        except BadMonthError as exc:
            raise Problem(400, "Bad month", str(exc)) from None
        feed = store()
        extent = feed.extent_ns(dataset)
        if extent is None or not (extent[0] < end_ns and start_ns <= extent[1]):
            raise Problem(
                404, "No such archive", f"{name} has no data in {month}; see /catalog.jsonld"
            )

        def rows() -> Iterator[dict[str, Any]]:
            for site in feed.sites(dataset):
                yield from feed.rows(dataset, Segment(site, start_ns, end_ns))

        spool, etag, size = spooled_gzip(csv_stream(dataset, rows()))
        modified = book.modified(_request_key(request), etag, min(end_ns // NS, time.time()))
        headers = {
            "ETag": etag,
            "Last-Modified": http_date(modified),
            "Cache-Control": f"public, max-age={fresh_s(dataset)}",
            "Content-Disposition": f'attachment; filename="{name}-{month}.csv.gz"',
        }
        if not_modified(request.headers, etag, modified):
            spool.close()
            return Response(status_code=304, headers=headers)
        headers["Content-Length"] = str(size)
        return StreamingResponse(read_out(spool), media_type="application/gzip", headers=headers)

    @get_and_head(
        app,
        "/sites",
        summary="Each site, where it is, what it measures, and its latest values",
        dependencies=[Depends(only())],
        responses={
            **PROBLEM_RESPONSE,
            304: NOT_MODIFIED,
            200: {
                "content": {"application/geo+json": {"schema": SITES}},
                "description": "Sites",
            },
        },
        response_class=JSONResponse,
    )
    def sites(request: Request) -> Response:
        feed = store()
        features = []
        newest = {name: feed.latest_rows(DATASETS[name]) for name in SITE_DATASETS}
        for site, place in sorted(feed.places().items()):
            latest = {
                name: shape_row(DATASETS[name], site, rows[site], min_people=feed.min_people)
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
        return validated(request, orjson.dumps(body), "application/geo+json", 300)

    @get_and_head(
        app,
        "/catalog.jsonld",
        summary="A DCAT catalogue of the datasets (for CKAN's DCAT harvester)",
        dependencies=[Depends(only())],
        responses={
            **PROBLEM_RESPONSE,
            304: NOT_MODIFIED,
            200: {
                "content": {"application/ld+json": {"schema": CATALOG}},
                "description": "DCAT",
            },
        },
        response_class=JSONResponse,
    )
    def catalog(request: Request) -> Response:
        return validated(request, orjson.dumps(catalogue()), "application/ld+json", 3600)

    @get_and_head(
        app,
        "/catalog.ttl",
        summary="The same DCAT catalogue as Turtle",
        dependencies=[Depends(only())],
        responses={
            **PROBLEM_RESPONSE,
            304: NOT_MODIFIED,
            200: {
                "content": {"text/turtle": {"schema": {"type": "string"}}},
                "description": "DCAT",
            },
        },
        response_class=Response,
    )
    def catalog_turtle(request: Request) -> Response:
        return validated(request, turtle(catalogue()), "text/turtle; charset=utf-8", 3600)

    def catalogue() -> dict[str, Any]:
        feed = store()
        extents = {}
        for dataset in DATASETS.values():
            found = feed.extent_ns(dataset)
            if found is not None:
                # While the newest period is open, the data is whole up to its start.
                newest_s = found[1] // NS
                end_s = newest_s + dataset.period_s
                if end_s > time.time():
                    end_s = newest_s
                extents[dataset.name] = Extent(found[0] // NS, end_s)
        return dcat_catalog(base, feed.places(), extents, settings.feeds.contact_email)

    return app


Handler = Callable[..., Response]


def get_and_head(app: FastAPI, path: str, **route: Any) -> Callable[[Handler], Handler]:
    """One handler for GET and HEAD (the server sends HEAD no body), each its own operation."""

    def register(handler: Handler) -> Handler:
        app.get(path, operation_id=handler.__name__, **route)(handler)
        app.head(path, operation_id=f"{handler.__name__}_head", **route)(handler)
        return handler

    return register


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods the routes matching the request's path take, GET first."""
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods, key=lambda method: (method != "GET", method))


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
        "schema": f"{base}/datasets/{dataset.name}/schema",
        "links": {fmt: f"{base}/datasets/{dataset.name}?format={fmt}" for fmt in MEDIA_TYPES},
    }


def negotiate(accept: str) -> Format:
    """The format the client prefers by its Accept header's q-values (JSON when it has none)."""
    try:
        chosen: Format = OFFERED[accepted(accept, {m: m for m in OFFERED}, "application/json")]
        return chosen
    except NotAcceptableError:
        raise Problem(
            406,
            "Not acceptable",
            "this service sends text/csv, application/json or application/geo+json",
        ) from None


def given_ns(moment: datetime | None) -> int | None:
    """A request's time as nanoseconds (UTC if it has no offset), or None when not given.
    Any year Python parses (1 to 9999) converts: the range is checked afterwards."""
    if moment is None:
        return None
    utc = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = utc - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1_000


def time_range(dataset: Dataset, start: datetime | None, end: datetime | None) -> tuple[int, int]:
    """The request's [from, to) in nanoseconds. No 'to' means now (or 366 days after 'from',
    whichever is sooner); no 'from' means the dataset's default span before 'to' (from 1970
    at the earliest)."""
    start_ns, end_ns = given_ns(start), given_ns(end)
    if end_ns is None:
        now_ns = int(time.time()) * NS
        end_ns = now_ns if start_ns is None else min(now_ns, start_ns + MAX_RANGE_NS)
    if start_ns is None:
        # Never before InfluxDB's first time: a 'to' in 1970 is a fine request on its own.
        start_ns = max(EARLIEST_NS, end_ns - dataset.default_days * 86_400 * NS)
    try:
        check_window(start_ns, end_ns)
    except BadWindowError as exc:
        title = "Time range too long" if "366" in str(exc) else "Bad time range"
        raise Problem(400, title, str(exc)) from None
    return start_ns, end_ns


def fresh_s(dataset: Dataset) -> int:
    """Cacheable until the next period could have closed."""
    return max(60, int(dataset.period_s - time.time() % dataset.period_s))


def only(*names: str) -> Callable[[Request], None]:
    """A dependency refusing query parameters the operation does not define, or gives twice:
    a misspelt ``sit=`` must not quietly return every site."""

    def check(request: Request) -> None:
        given = [key for key, _ in request.query_params.multi_items()]
        unknown = unknown_parameters(given, names)
        if unknown:
            takes = ", ".join(names) if names else "no parameters"
            raise Problem(
                400,
                "Unknown parameter",
                f"{', '.join(unknown)}: not a parameter here (takes {takes})",
            )
        twice = repeated_parameters(given)
        if twice:
            raise Problem(400, "Repeated parameter", f"{', '.join(twice)}: give each once")

    return check


def spooled(chunks: Iterator[bytes]) -> tuple[IO[bytes], str, int]:
    """The body written out (memory, then disk past SPOOL_MEMORY_BYTES), its ETag, its size."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - read_out closes it
    size = 0

    def written() -> Iterator[bytes]:
        nonlocal size
        for chunk in chunks:
            spool.write(chunk)
            size += len(chunk)
            yield chunk

    try:
        etag = etag_of(written())
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, etag, size


def spooled_gzip(chunks: Iterator[bytes]) -> tuple[IO[bytes], str, int]:
    """The body gzipped (no time or name in its header: the same rows, the same bytes) into
    a spool as ``spooled`` does, its ETag and its size."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - read_out closes it
    try:
        with gzip.GzipFile(fileobj=spool, mode="wb", mtime=0, filename="") as packed:
            for chunk in chunks:
                packed.write(chunk)
        size = spool.tell()
        spool.seek(0)
        etag = etag_of(iter(lambda: spool.read(READ_BYTES), b""))
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, etag, size


def read_out(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := spool.read(READ_BYTES):
            yield chunk
    finally:
        spool.close()


def _request_key(request: Request, chosen: str = "") -> str:
    """What a body belongs to: the path, the parameters in any order, and the format."""
    query = sorted(request.query_params.multi_items())
    return f"{request.url.path}?{query!r}#{chosen}"


def problem_response(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type=PROBLEM,
    )
