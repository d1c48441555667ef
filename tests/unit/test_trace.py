"""Reading the times people type into `smartplace trace`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smartplace.errors import SmartplaceError
from smartplace.trace import parse_when

NOW = datetime(2026, 11, 25, 17, 40, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:15", datetime(2026, 11, 25, 9, 15, tzinfo=UTC)),
        ("09:15:30", datetime(2026, 11, 25, 9, 15, 30, tzinfo=UTC)),
        ("2026-11-24T09:15", datetime(2026, 11, 24, 9, 15, tzinfo=UTC)),
        ("2026-11-24 09:15:00+01:00", datetime(2026, 11, 24, 8, 15, tzinfo=UTC)),
        ("90m", NOW - timedelta(minutes=90)),
        ("6h", NOW - timedelta(hours=6)),
        ("2d", NOW - timedelta(days=2)),
    ],
)
def test_times_people_write(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["teatime", "25:99", "6 weeks", ""])
def test_a_time_it_cannot_read_says_what_it_can(text: str) -> None:
    with pytest.raises(SmartplaceError, match="give an ISO time"):
        parse_when(text, NOW)
