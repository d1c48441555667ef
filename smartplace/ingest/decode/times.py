"""ISO 8601 UTC times in the shape devices send most, parsed a column at a time.

``2026-11-25T22:15:00Z``, with or without a fraction of 1 to 9 digits
(``.123Z`` is the simulator's). Anything else, or a date that does not exist,
is left for ``timestamp_to_ns`` to judge: this only ever agrees with it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from smartplace.schemas.reading import NS_PER_S

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

_SECONDS_LENGTH = 20  # 2026-11-25T22:15:00Z
_LONGEST = 30  # 2026-11-25T22:15:00.123456789Z
_FRACTION = np.arange(20, 29)  # where a fraction's digits may be
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_SEPARATOR_AT = [4, 7, 10, 13, 16]
_SEPARATORS = np.array([ord(c) for c in "--T::"])
_DAYS_BEFORE_MONTH = np.array([0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _place_values() -> IntArray:
    """(position, part): a digit's worth in year, month, day, hour, minute, second, fraction."""
    spans = [(0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19), (20, 29)]
    weights = np.zeros((_LONGEST, len(spans)), dtype=np.int64)
    for part, (first, end) in enumerate(spans):
        weights[first:end, part] = 10 ** np.arange(end - first - 1, -1, -1)
    return weights


# A fraction's missing digits count as zeros: ".5" is 500,000,000 ns, as ljust(9, "0") has it.
_PLACE_VALUES = _place_values()


def parse_utc(texts: list[str]) -> tuple[IntArray, BoolArray]:
    """Nanoseconds since the epoch for each text, and whether it had that shape."""
    n = len(texts)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    fractional = (lengths >= _SECONDS_LENGTH + 2) & (lengths <= _LONGEST)
    codes = np.array(texts, dtype=f"U{_LONGEST}").view(np.uint32).reshape(n, -1)
    if codes.shape[1] < _LONGEST:  # every text shorter than the longest shape
        codes = np.pad(codes, ((0, 0), (0, _LONGEST - codes.shape[1])))
    digits = codes.astype(np.int64) - ord("0")
    is_digit = (digits >= 0) & (digits <= 9)
    in_fraction = (lengths - 1)[:, None] > _FRACTION  # between the '.' and the final 'Z'
    final = codes[np.arange(n), np.clip(lengths - 1, 0, _LONGEST - 1)]
    ok = (
        ((lengths == _SECONDS_LENGTH) | fractional)
        & is_digit[:, _DIGITS].all(axis=1)
        & (codes[:, _SEPARATOR_AT] == _SEPARATORS).all(axis=1)
        & (final == ord("Z"))
        & (~fractional | (codes[:, 19] == ord(".")))
        & (is_digit[:, _FRACTION] | ~in_fraction).all(axis=1)
    )
    # Everything not a digit (separators, the 'Z', what follows the text) is worth nothing.
    parts = np.where(is_digit & ok[:, None], digits, 0) @ _PLACE_VALUES
    year, month, day, hour, minute, second, fraction = parts.T
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_index = np.clip(month, 0, 12)
    month_days = _DAYS_IN_MONTH[month_index] + ((month_index == 2) & leap)
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _days_since_epoch(year, month_index, day, leap)
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    ok &= (seconds >= 0) & (seconds < 9_000_000_000)  # before 2255: int64 nanoseconds
    ns: IntArray = np.where(ok, seconds, 0) * NS_PER_S + np.where(ok, fraction, 0)
    return ns, ok


def _days_since_epoch(year: IntArray, month: IntArray, day: IntArray, leap: BoolArray) -> IntArray:
    before = year - 1
    days_before_year = before * 365 + before // 4 - before // 100 + before // 400
    day_of_year = _DAYS_BEFORE_MONTH[month] + ((month > 2) & leap) + day - 1
    days: IntArray = days_before_year + day_of_year - 719_162  # 0001-01-01 to 1970-01-01
    return days
