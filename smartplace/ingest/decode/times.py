"""ISO 8601 UTC times in the shape devices send most, parsed a column at a time.

``2026-11-25T22:15:00Z``, with or without a fraction of 1 to 9 digits
(``.123Z`` is the simulator's). Anything else, or a date that does not exist,
is left for ``timestamp_to_ns`` to judge: this only ever agrees with it.
"""

from __future__ import annotations

from typing import Any

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
_SPANS = [(0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19), (20, 29)]
"""Where year, month, day, hour, minute, second and fraction are (first, end)."""


def parse_utc(texts: list[str]) -> tuple[IntArray, BoolArray]:
    """Nanoseconds since the epoch for each text, and whether it had that shape."""
    n = len(texts)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.bool_)
    codes = _character_codes(texts, lengths)
    width = codes.shape[1]
    digits = codes - codes.dtype.type(ord("0"))  # unsigned: what sorts below '0' wraps high
    is_digit = digits <= 9
    fractional = (lengths >= _SECONDS_LENGTH + 2) & (lengths <= _LONGEST)
    in_fraction = (lengths - 1)[:, None] > _FRACTION[: width - 20]  # between '.' and 'Z'
    final = codes[np.arange(n), np.clip(lengths - 1, 0, width - 1)]
    ok = (
        ((lengths == _SECONDS_LENGTH) | fractional)
        & is_digit[:, _DIGITS].all(axis=1)
        & (codes[:, _SEPARATOR_AT] == _SEPARATORS).all(axis=1)
        & (final == ord("Z"))
        & (~fractional | (codes[:, 19] == ord(".")))
        & (is_digit[:, 20:width][:, : len(_FRACTION)] | ~in_fraction).all(axis=1)
    )
    # Everything not a digit (separators, the 'Z', what follows the text) is worth nothing.
    worth = digits * is_digit
    year, month, day, hour, minute, second, fraction = (
        _number(worth, first, end) for first, end in _SPANS
    )
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


def _number(worth: npt.NDArray[Any], first: int, end: int) -> IntArray:
    """The digits in columns first..end-1 read as one decimal number; a column past the
    codes' width counts as a zero, as a fraction's missing digits do (".5" is 500 ms)."""
    number = np.zeros(len(worth), dtype=np.int64)
    for column in range(first, end):
        number *= 10
        if column < worth.shape[1]:
            number += worth[:, column]
    return number


def _character_codes(texts: list[str], lengths: IntArray) -> npt.NDArray[np.unsignedinteger[Any]]:
    """Shape (texts, at least 20 and at most 30): each text's character codes, zero after its
    end (a text longer than the longest shape is cut; its length refuses it anyway).

    A batch's times usually share one shape: ASCII text of one length is then one byte
    string cut into rows, eight times smaller than numpy's four-byte characters."""
    width = int(lengths[0])
    if width <= _LONGEST and (lengths == width).all():
        try:
            raw = "".join(texts).encode("ascii")
        except UnicodeEncodeError:
            pass
        else:
            return _at_least(np.frombuffer(raw, dtype=np.uint8).reshape(len(texts), width))
    wide = np.array(texts, dtype=f"U{_LONGEST}").view(np.uint32).reshape(len(texts), -1)
    return _at_least(wide)


def _at_least(codes: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Codes padded with zeros to the seconds shape's width, so every fixed place exists."""
    if codes.shape[1] >= _SECONDS_LENGTH:
        return codes
    return np.pad(codes, ((0, 0), (0, _SECONDS_LENGTH - codes.shape[1])))


def _days_since_epoch(year: IntArray, month: IntArray, day: IntArray, leap: BoolArray) -> IntArray:
    before = year - 1
    days_before_year = before * 365 + before // 4 - before // 100 + before // 400
    day_of_year = _DAYS_BEFORE_MONTH[month] + ((month > 2) & leap) + day - 1
    days: IntArray = days_before_year + day_of_year - 719_162  # 0001-01-01 to 1970-01-01
    return days
