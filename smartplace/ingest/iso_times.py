"""ISO 8601 UTC times in the one shape devices send most, parsed a column at a time.

``2026-11-25T22:15:00Z`` and ``2026-11-25T22:15:00.123Z`` (the simulator's
shape). Anything else, or a date that does not exist, is left for
``timestamp_to_ns`` to judge: this only ever agrees with it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

_SECONDS_LENGTH = 20  # 2026-11-25T22:15:00Z
_MILLIS_LENGTH = 24  # 2026-11-25T22:15:00.123Z
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_SEPARATORS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}
_DAYS_BEFORE_MONTH = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_NS_PER_S = 1_000_000_000


def parse_utc(texts: list[str]) -> tuple[IntArray, BoolArray]:
    """Nanoseconds since the epoch for each text, and whether it was one of the two shapes."""
    n = len(texts)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    millis = lengths == _MILLIS_LENGTH
    ok = (lengths == _SECONDS_LENGTH) | millis
    codes = np.array(texts, dtype=f"U{_MILLIS_LENGTH}").view(np.uint32).reshape(n, -1)
    if codes.shape[1] < _MILLIS_LENGTH:  # every text shorter than the longer shape
        codes = np.pad(codes, ((0, 0), (0, _MILLIS_LENGTH - codes.shape[1])))
    digits = codes.astype(np.int64) - ord("0")
    ok &= ((digits[:, _DIGITS] >= 0) & (digits[:, _DIGITS] <= 9)).all(axis=1)
    for position, char in _SEPARATORS.items():
        ok &= codes[:, position] == ord(char)
    ok &= np.where(
        millis,
        (codes[:, 19] == ord("."))
        & ((digits[:, 20:23] >= 0) & (digits[:, 20:23] <= 9)).all(axis=1)
        & (codes[:, 23] == ord("Z")),
        codes[:, 19] == ord("Z"),
    )
    digits = np.where(ok[:, None], digits, 0)

    def number(first: int, last: int) -> IntArray:
        value = np.zeros(n, dtype=np.int64)
        for position in range(first, last + 1):
            value = value * 10 + digits[:, position]
        return value

    year, month, day = number(0, 3), number(5, 6), number(8, 9)
    hour, minute, second = number(11, 12), number(14, 15), number(17, 18)
    milli = np.where(millis, number(20, 22), 0)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_index = np.clip(month, 0, 12)
    month_days = _DAYS_IN_MONTH[month_index] + ((month_index == 2) & leap)
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _days_since_epoch(year, month_index, day, leap)
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    ok &= (seconds >= 0) & (seconds < 9_000_000_000)  # before 2255: int64 nanoseconds
    ns: IntArray = np.where(ok, seconds, 0) * _NS_PER_S + milli * 1_000_000
    return ns, ok


def _days_since_epoch(year: IntArray, month: IntArray, day: IntArray, leap: BoolArray) -> IntArray:
    before = year - 1
    days_before_year = before * 365 + before // 4 - before // 100 + before // 400
    day_of_year = _DAYS_BEFORE_MONTH[month] + ((month > 2) & leap) + day - 1
    days: IntArray = days_before_year + day_of_year - 719_162  # 0001-01-01 to 1970-01-01
    return days
