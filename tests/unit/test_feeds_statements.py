"""What the feeds service sends InfluxDB: statement text from definitions, values as parameters."""

from __future__ import annotations

import re

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
    cursor = Cursor("merseyway", 1_795_000_000 * 10**9, "q1")
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
    ],
)
def test_content_negotiation(accept: str, chosen: str) -> None:
    assert negotiate(accept) == chosen


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
