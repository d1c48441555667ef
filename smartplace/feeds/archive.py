"""Bulk files: a dataset's whole month (every site) as one gzip CSV, so a portal can copy the
whole history a file at a time instead of paging a week at a time.

The gzip header carries no time or name (mtime 0: see app.spooled_gzip), so the same rows
always give the same bytes, and so the same ETag.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from smartplace.feeds.store import NS

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


class BadMonthError(ValueError):
    pass


def month_range_ns(month: str) -> tuple[int, int]:
    """[start, end) of a calendar month (``YYYY-MM``, UTC) in nanoseconds."""
    if not re.fullmatch(MONTH_PATTERN, month):
        raise BadMonthError("a month is YYYY-MM")
    year, number = int(month[:4]), int(month[5:])
    if not 1970 <= year <= 2261:
        raise BadMonthError("months run from 1970-01 to 2261-12")
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()) * NS, int(end.timestamp()) * NS


def months_between(start_s: int, end_s: int) -> list[str]:
    """Every month (``YYYY-MM``) from the one holding ``start_s`` to the one holding ``end_s``."""
    first = datetime.fromtimestamp(start_s, UTC)
    last = datetime.fromtimestamp(end_s, UTC)
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
