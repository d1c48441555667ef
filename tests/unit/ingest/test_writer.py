"""Bisecting a refused batch down to the lines InfluxDB will not take."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from smartplace.errors import InfluxError, InfluxUnavailableError
from smartplace.ingest.write.refusals import write_isolating_refusals


class Database:
    """Stands in for InfluxDB's verdict only: refuses a request holding any 'bad' line."""

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.requests = 0
        self.stored: set[str] = set()

    def write(self, lines: Sequence[str]) -> None:
        self.requests += 1
        if self.bad & set(lines):
            raise InfluxError("partial write: field type conflict", 400)
        self.stored |= set(lines)


def test_only_the_refused_lines_are_lost_and_the_search_is_logarithmic() -> None:
    lines = [f"m v={i}" for i in range(64)]
    db = Database(bad={"m v=5", "m v=40"})
    refused = write_isolating_refusals(db.write, lines)
    assert [place for place, _ in refused] == [5, 40]
    assert refused[0][1] == "partial write: field type conflict"
    assert db.stored == set(lines) - db.bad
    assert db.requests <= 2 * 2 * 6 + 1  # k bad lines: about 2k log2(n) requests, not n


def test_a_clean_batch_is_one_request() -> None:
    db = Database(bad=set())
    assert write_isolating_refusals(db.write, ["a v=1", "b v=2"]) == []
    assert db.requests == 1


def test_failures_worth_retrying_are_not_swallowed() -> None:
    def down(_lines: Sequence[str]) -> None:
        raise InfluxUnavailableError("connection refused", None)

    with pytest.raises(InfluxUnavailableError):
        write_isolating_refusals(down, ["a v=1"])
