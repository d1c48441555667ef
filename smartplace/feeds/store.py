"""Reading the public aggregates back from InfluxDB, a page at a time, in bounded slices.

Every value a request carries reaches InfluxQL as a bound parameter ($site,
$start, $end), never as text: the statement's text comes from the dataset
definitions alone. Rows are read one site and one month at a time, so a
year of hourly data for fifty sites is streamed, never held.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from smartplace.feeds.datasets import COMPLETE_COVERAGE, Dataset
from smartplace.influx import InfluxClient
from smartplace.storage import DEVICE_INFO

NS = 1_000_000_000
SLICE_NS = 31 * 86_400 * NS
"""Rows are read a month at a time: the most any one query holds."""
EARLIEST_NS = 0
LATEST_NS = int(datetime(2262, 1, 1, tzinfo=UTC).timestamp()) * NS
"""InfluxDB keeps times from 1970 to April 2262 (signed 64-bit nanoseconds)."""
MAX_RANGE_NS = 366 * 86_400 * NS
"""The longest time range one request (and its pages) covers."""


FIELD = re.compile(r'"([^"]+)"')
"""The field a column's select reads (its first quoted name)."""


class BadCursorError(ValueError):
    pass


class BadWindowError(ValueError):
    pass


def check_window(start_ns: int, end_ns: int) -> None:
    """Refuse a time range InfluxDB cannot hold, a reversed one or one over 366 days."""
    if not (EARLIEST_NS <= start_ns < LATEST_NS and EARLIEST_NS < end_ns <= LATEST_NS):
        raise BadWindowError("times must fall between 1970-01-01 and 2262-01-01 (UTC)")
    if start_ns >= end_ns:
        raise BadWindowError("'from' must be before 'to'")
    if end_ns - start_ns > MAX_RANGE_NS:
        raise BadWindowError("ask for at most 366 days at a time (and page through)")


@dataclass(frozen=True, slots=True)
class Cursor:
    site: str
    from_ns: int
    query: str
    """A digest of the request it belongs to: a cursor is only good for its own query."""
    start_ns: int
    end_ns: int
    """The request's whole time range, fixed on its first page: an open end ("now") stays
    where it was, so later pages join up with the earlier ones."""

    def encode(self) -> str:
        raw = orjson.dumps(
            {
                "s": self.site,
                "t": self.from_ns,
                "q": self.query,
                "a": self.start_ns,
                "b": self.end_ns,
            }
        )
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, query: str) -> Cursor:
        """A cursor this service could have given out for ``query``; anything else is refused
        (it is the client's text: its times are checked as a request's would be)."""
        try:
            data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cursor = cls(
                str(data["s"]), int(data["t"]), str(data["q"]), int(data["a"]), int(data["b"])
            )
            check_window(cursor.start_ns, cursor.end_ns)
        except (binascii.Error, ValueError, KeyError, TypeError, OverflowError) as exc:
            raise BadCursorError("the cursor is not one this service gave out") from exc
        if cursor.query != query:
            raise BadCursorError("the cursor belongs to another query: keep the other parameters")
        if not cursor.start_ns <= cursor.from_ns < cursor.end_ns:
            raise BadCursorError("the cursor is not one this service gave out")
        return cursor


def query_digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Segment:
    site: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class Page:
    segments: list[Segment]
    next: Cursor | None


@dataclass(frozen=True, slots=True)
class SitePlace:
    latitude: float
    longitude: float
    kinds: list[str]


class FeedStore:
    def __init__(self, influx: InfluxClient, min_people: int = 0) -> None:
        self.influx = influx
        self.min_people = min_people
        """Counts of people below this are suppressed in every row read."""
        self.agg = f'"{influx.settings.agg_retention_policy}"'
        self.raw = f'"{influx.settings.raw_retention_policy}"'

    # -- statements (text from definitions only) ---------------------------------------

    def _bucketed(self, dataset: Dataset, every_site: bool = False) -> str:
        """One row per period: for the $site, or (``every_site``) for each site at once."""
        columns = _selects(dataset)
        site = "" if every_site else '"site" = $site AND '
        by_site = ', "site"' if every_site else ""
        return (
            f'SELECT {columns} FROM {self.agg}."{dataset.measurement}"'
            f" WHERE {site}time >= $start AND time < $end"
            f" GROUP BY time({dataset.period_s}s){by_site} fill(none)"
        )

    # -- what exists ------------------------------------------------------------------

    def sites(self, dataset: Dataset) -> list[str]:
        rows = self.influx.query_rows(
            f'SHOW TAG VALUES FROM {self.agg}."{dataset.measurement}" WITH KEY = "site"'
        )
        return sorted({str(row["value"]) for row in rows if row.get("value")})

    def places(self) -> dict[str, SitePlace]:
        """Each site's location (its devices' mean position) and the kinds of device there."""
        rows = self.influx.query_rows(
            'SELECT last("latitude") AS "latitude", last("longitude") AS "longitude"'
            f' FROM {self.raw}."{DEVICE_INFO}" GROUP BY "site", "kind", "device_id"'
        )
        by_site: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if row.get("site") and row.get("latitude") is not None:
                by_site.setdefault(str(row["site"]), []).append(row)
        return {
            site: SitePlace(
                round(sum(r["latitude"] for r in found) / len(found), 6),
                round(sum(r["longitude"] for r in found) / len(found), 6),
                sorted({str(r["kind"]) for r in found}),
            )
            for site, found in by_site.items()
        }

    def latest_rows(self, dataset: Dataset) -> dict[str, dict[str, Any]]:
        """Each site's most recent row within the last month (for /sites), in one query:
        LIMIT applies to each site's series."""
        columns = _selects(dataset)
        for window in _recent_windows(dataset):
            rows = self.influx.query_rows(
                f'SELECT {columns} FROM {self.agg}."{dataset.measurement}"'
                f" WHERE time > now() - {window}"
                f' GROUP BY time({dataset.period_s}s), "site" fill(none) ORDER BY time DESC LIMIT 1'
            )
            if rows:
                break
        latest = {str(row["site"]): row for row in rows if row.get("site")}
        if dataset.coverage is not None and latest:
            covered = self._latest_coverage(dataset, window)
            for site, row in latest.items():
                found = covered.get(site)
                # Only the same period's coverage is this row's (else: not known).
                row["coverage"] = found[1] if found and found[0] == int(row["time"]) else None
        return latest

    def _latest_coverage(self, dataset: Dataset, window: str) -> dict[str, tuple[int, float]]:
        """Each site's newest period's coverage (as ``rows`` finds it), in one query."""
        assert dataset.coverage is not None
        finer = dataset.coverage
        rows = self.influx.query_rows(
            f'SELECT mean("windows") AS "windows" FROM (SELECT count("{finer.field}") AS "windows"'
            f' FROM {self.agg}."{finer.measurement}" WHERE time > now() - {window}'
            f' GROUP BY time({dataset.period_s}s), "site", "device_id" fill(none))'
            f' GROUP BY time({dataset.period_s}s), "site" fill(none) ORDER BY time DESC LIMIT 1'
        )
        whole = dataset.period_s / finer.period_s
        return {
            str(row["site"]): (int(row["time"]), min(1.0, float(row["windows"]) / whole))
            for row in rows
            if row.get("site") and row.get("windows") is not None
        }

    def latest_ns(self, dataset: Dataset, sites: list[str]) -> int | None:
        """When the newest period of these sites started: what Last-Modified is made from.
        One query for every site (the newest point of the dataset's first field)."""
        field = re.search(r'"([^"]+)"', dataset.columns[0].select)
        assert field is not None  # every column selects a quoted field
        for window in (*_recent_windows(dataset), "366d"):
            rows = self.influx.query_rows(
                f'SELECT last("{field.group(1)}") FROM {self.agg}."{dataset.measurement}"'
                f' WHERE time > now() - {window} GROUP BY "site"'
            )
            if rows:
                break
        wanted = set(sites)
        times = [int(row["time"]) for row in rows if row.get("site") in wanted]
        return max(times) if times else None

    def extent_ns(self, dataset: Dataset) -> tuple[int, int] | None:
        """When the dataset's first period and its newest period started (every site)."""
        field = re.search(r'"([^"]+)"', dataset.columns[0].select)
        assert field is not None  # every column selects a quoted field
        found = []
        for selector in ("first", "last"):
            rows = self.influx.query_rows(
                f'SELECT {selector}("{field.group(1)}") FROM {self.agg}."{dataset.measurement}"'
            )
            if not rows:
                return None
            found.append(int(rows[0]["time"]))
        return found[0], found[1]

    # -- paging and reading ------------------------------------------------------------

    def _counted(self, dataset: Dataset, every_site: bool = False) -> str:
        """How many rows the $site (or each site) has in the range: the periods holding the
        first column, or (a sparse dataset) any field: each field's count per period, 0
        where it has none (fill(0)), added up, and the periods where that is above 0."""
        by_site = ' GROUP BY "site"' if every_site else ""
        if not dataset.sparse:
            first = dataset.columns[0]
            inner = self._bucketed(dataset, every_site)
            return f'SELECT count("{first.name}") FROM ({inner}){by_site}'
        fields = [found.group(1) for c in dataset.columns if (found := FIELD.search(c.select))]
        counts = ", ".join(f'count("{field}") AS "n{k}"' for k, field in enumerate(fields))
        total = " + ".join(f'"n{k}"' for k in range(len(fields)))
        site = "" if every_site else '"site" = $site AND '
        group = ', "site"' if every_site else ""
        return (
            f'SELECT count("present") FROM (SELECT {total} AS "present" FROM (SELECT {counts}'
            f' FROM {self.agg}."{dataset.measurement}" WHERE {site}time >= $start'
            f" AND time < $end GROUP BY time({dataset.period_s}s){group} fill(0)){by_site})"
            f' WHERE "present" > 0{by_site}'
        )

    def count(self, dataset: Dataset, site: str, start_ns: int, end_ns: int) -> int:
        rows = self.influx.query_rows(
            self._counted(dataset), {"site": site, "start": start_ns, "end": end_ns}
        )
        return int(rows[0]["count"]) if rows else 0

    def counts(self, dataset: Dataset, start_ns: int, end_ns: int) -> dict[str, int]:
        """Rows per site in the range, every site in one query."""
        rows = self.influx.query_rows(
            self._counted(dataset, every_site=True), {"start": start_ns, "end": end_ns}
        )
        return {str(row["site"]): int(row["count"]) for row in rows}

    def nth_time(self, dataset: Dataset, site: str, start_ns: int, end_ns: int, n: int) -> int:
        rows = self.influx.query_rows(
            f"{self._bucketed(dataset)} LIMIT 1 OFFSET {int(n)}",
            {"site": site, "start": start_ns, "end": end_ns},
        )
        return int(rows[0]["time"])

    def plan(
        self,
        dataset: Dataset,
        sites: list[str],
        start_ns: int,
        end_ns: int,
        limit: int,
        cursor: Cursor | None,
        query: str,
    ) -> Page:
        """Which (site, time range) pieces make this page, and where the next one starts."""
        segments: list[Segment] = []
        remaining = limit
        if cursor is not None:
            sites = [s for s in sites if s >= cursor.site]
        whole = self.counts(dataset, start_ns, end_ns) if len(sites) > 1 else {}
        for site in sites:
            begin = max(start_ns, cursor.from_ns) if cursor and site == cursor.site else start_ns
            if remaining == 0:
                return Page(segments, Cursor(site, begin, query, start_ns, end_ns))
            if begin == start_ns and whole:
                found = whole.get(site, 0)
            else:
                found = self.count(dataset, site, begin, end_ns)
            if found <= remaining:
                segments.append(Segment(site, begin, end_ns))
                remaining -= found
                continue
            cut = self.nth_time(dataset, site, begin, end_ns, remaining)
            segments.append(Segment(site, begin, cut))
            return Page(segments, Cursor(site, cut, query, start_ns, end_ns))
        return Page(segments, None)

    def _covered(self, dataset: Dataset) -> str:
        """Per period at the $site: the mean over its devices of how many of the period's
        finer windows hold a point (text from definitions only)."""
        assert dataset.coverage is not None
        finer = dataset.coverage
        return (
            f'SELECT mean("windows") AS "windows" FROM (SELECT count("{finer.field}") AS "windows"'
            f' FROM {self.agg}."{finer.measurement}" WHERE "site" = $site'
            f' AND time >= $start AND time < $end GROUP BY time({dataset.period_s}s), "device_id"'
            f" fill(none)) GROUP BY time({dataset.period_s}s) fill(none)"
        )

    def rows(self, dataset: Dataset, segment: Segment) -> Iterator[dict[str, Any]]:
        """The segment's rows, oldest first, read a month at a time."""
        statement = self._bucketed(dataset)
        for start in range(segment.start_ns, segment.end_ns, SLICE_NS):
            end = min(segment.end_ns, start + SLICE_NS)
            bound = {"site": segment.site, "start": start, "end": end}
            covered: dict[int, float] = {}
            if dataset.coverage is not None:
                whole = dataset.period_s / dataset.coverage.period_s
                # A row starting before ``end`` is served whole: count its finer windows to
                # the end of its period, not to ``end``.
                period_ns = dataset.period_s * NS
                to_period_end = {**bound, "end": -(-end // period_ns) * period_ns}
                covered = {
                    int(row["time"]): min(1.0, float(row["windows"]) / whole)
                    for row in self.influx.query_rows(self._covered(dataset), to_period_end)
                    if row.get("windows") is not None
                }
            for row in self.influx.query_rows(statement, bound):
                if dataset.coverage is not None:
                    # No finer windows (none kept, or all expired): how whole is not known.
                    row["coverage"] = covered.get(int(row["time"]))
                yield shape_row(dataset, segment.site, row, min_people=self.min_people)


def _selects(dataset: Dataset) -> str:
    return ", ".join(f'{c.select} AS "{c.name}"' for c in dataset.columns if c.select)


def _recent_windows(dataset: Dataset) -> tuple[str, str]:
    """Where to look for the newest rows: a few periods back first (cheap), then a month."""
    return f"{max(2 * 86_400, 3 * dataset.period_s)}s", "31d"


def shape_row(
    dataset: Dataset,
    site: str,
    row: dict[str, Any],
    now_s: float | None = None,
    min_people: int = 0,
) -> dict[str, Any]:
    """A row as published: ISO times, integers as integers, and how whole its period is
    (``coverage`` from the seconds counted, or as the store found it from the finer windows;
    ``complete`` once it has ended and, where the dataset knows its coverage, enough of it
    was measured). A count of people from 1 to
    ``min_people`` - 1 is suppressed (empty): zero is published, it names no one."""
    start_s = int(row["time"]) // NS
    end_s = start_s + dataset.period_s
    out: dict[str, Any] = {
        "site": site,
        "period_start": iso(start_s),
        "period_end": iso(end_s),
    }
    for column in dataset.columns:
        value = row.get(column.name)
        if column.name == "coverage" and column.select and value is not None:
            value = float(value) / dataset.period_s  # mean seconds counted per counter
        if value is not None and column.type == "integer":
            value = int(value)
            if column.people and 0 < value < min_people:
                value = None
        elif isinstance(value, float):
            value = round(value, 3)
        out[column.name] = value
    if "complete" in out:
        ended = end_s <= (time.time() if now_s is None else now_s)
        coverage = out.get("coverage", 1.0)
        out["complete"] = ended and coverage is not None and coverage >= COMPLETE_COVERAGE
    return out


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
