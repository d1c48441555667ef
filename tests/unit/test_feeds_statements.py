"""What the feeds service sends InfluxDB: statement text from definitions, values as parameters."""

from __future__ import annotations

import base64
import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartplace.config import InfluxSettings
from smartplace.feeds.app import negotiate, time_range
from smartplace.feeds.datasets import DATASETS
from smartplace.feeds.store import BadCursorError, Cursor, FeedStore
from smartplace.influx import InfluxClient


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_statement_binds_every_request_value(name: str) -> None:
    with InfluxClient(InfluxSettings()) as influx:
        statement = FeedStore(influx)._bucketed(DATASETS[name])
    assert re.findall(r"\$\w+", statement) == ["$site", "$start", "$end"]
    assert "'" not in statement


@given(st.text(max_size=200))
def test_any_cursor_text_is_refused_or_understood_never_trusted(text: str) -> None:
    try:
        cursor = Cursor.decode(text, "q1")
    except BadCursorError:
        return
    assert cursor.query == "q1"


def test_a_cursor_round_trips_and_is_bound_to_its_query() -> None:
    start = 1_795_000_000 * 10**9
    cursor = Cursor("merseyway", start + 3600 * 10**9, "q1", start, start + 86_400 * 10**9)
    assert Cursor.decode(cursor.encode(), "q1") == cursor
    with pytest.raises(BadCursorError, match="another query"):
        Cursor.decode(cursor.encode(), "q2")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("", "json"),
        ("text/csv", "csv"),
        ("application/geo+json, application/json;q=0.5", "geojson"),
        ("text/csv;q=0, application/json", "json"),
        ("*/*", "json"),
        ("text/*", "csv"),
        # q-values, not the order listed, decide
        ("text/csv;q=0.5, application/json", "json"),
        ("application/json;q=0.2, text/csv;q=0.9", "csv"),
        ("application/json;q=0.3, */*;q=0.4", "csv"),  # */* covers csv and geojson
        ("application/*;q=0.9, application/geo+json;q=0.1", "json"),
        ("text/csv, application/json", "csv"),  # a tie goes to the one listed first
        ("*/*;q=0.1, application/geo+json", "geojson"),
        ("TEXT/CSV ; Q=0.8, application/json;q=0.7", "csv"),
        ("text/csv;q=abc, application/json;q=0.1", "json"),  # unreadable q is no consent
        ("text/csv;q=2, application/json;q=0.1", "json"),  # nor is one over 1
        ("text/csv;level=1;q=0.9, application/json;q=0.8", "csv"),
    ],
)
def test_content_negotiation(accept: str, chosen: str) -> None:
    assert negotiate(accept) == chosen


@pytest.mark.parametrize(
    "accept", ["image/png", "text/csv;q=0, application/*;q=0", "*/*;q=0", "text/html"]
)
def test_nothing_acceptable_is_406(accept: str) -> None:
    from smartplace.feeds.app import Problem

    with pytest.raises(Problem) as refused:
        negotiate(accept)
    assert refused.value.status == 406


@given(st.text(max_size=300))
def test_any_accept_header_gets_a_format_or_a_406(accept: str) -> None:
    from smartplace.feeds.app import Problem

    try:
        chosen = negotiate(accept)
    except Problem as refused:
        status = refused.status
    else:
        status = 200
        assert chosen in ("csv", "json", "geojson")
    assert status in (200, 406)


@pytest.mark.parametrize(
    ("start", "end", "at"),
    [
        (0, 10**9, -1),  # its position before its range
        (0, 10**9, 10**9),  # at its range's end
        (-(10**9), 10**9, 0),  # before 1970
        (0, 2**63, 0),  # past what InfluxDB holds
        (0, 367 * 86_400 * 10**9, 0),  # longer than a request may ask
        (10**9, 10**9, 10**9),  # empty
        (0, 10**400, 0),  # a huge number
    ],
)
def test_a_forged_cursor_is_refused(start: int, end: int, at: int) -> None:
    raw = orjson.dumps({"s": "merseyway", "t": at, "q": "q1", "a": start})[:-1]
    text = raw + b',"b":' + str(end).encode() + b"}"
    forged = base64.urlsafe_b64encode(text).decode()
    with pytest.raises(BadCursorError, match="not one this service gave out"):
        Cursor.decode(forged, "q1")


def test_time_ranges_default_and_refuse_reversed_or_too_long() -> None:
    from datetime import UTC, datetime

    from smartplace.feeds.app import Problem

    dataset = DATASETS["footfall-hourly"]
    start, end = time_range(dataset, None, None)
    assert end - start == 7 * 86_400 * 10**9
    with pytest.raises(Problem, match="before"):
        time_range(dataset, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(Problem, match="366 days"):
        time_range(dataset, datetime(2020, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    # With 'from' alone, 'to' is 366 days later when that is before now.
    assert time_range(dataset, datetime(2020, 1, 1, tzinfo=UTC), None) == (
        1_577_836_800 * 10**9,
        (1_577_836_800 + 366 * 86_400) * 10**9,
    )
    for year in (1, 1969, 2263, 3000, 9999):
        for start, end in ((datetime(year, 1, 1), None), (None, datetime(year, 1, 1))):
            with pytest.raises(Problem, match="between 1970-01-01 and 2262-01-01"):
                time_range(dataset, start, end)
