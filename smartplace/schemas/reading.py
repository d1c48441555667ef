"""What every reading shares: the device id and its timestamp.

Device ids are checked at the door against one strict pattern, so no id can
carry line-protocol or topic metacharacters into storage.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError

DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]

# Epoch numbers above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_EPOCH_MS_THRESHOLD = 1e11
NS_PER_S = 1_000_000_000
_YEAR_3000_S = 32503680000  # beyond any clock we will meet


def timestamp_to_ns(value: Any) -> int:
    """ISO 8601 text or epoch seconds/milliseconds as integer nanoseconds since the epoch (UTC).

    ISO text without a zone is taken as UTC (as Sensor.Community publishes it).
    """
    if type(value) is float and 0 <= value < _YEAR_3000_S:  # the usual case, first
        return round(value * NS_PER_S)
    if isinstance(value, bool):
        raise PydanticCustomError(
            "bad_timestamp", "timestamp must be ISO 8601 text or epoch seconds/ms"
        )
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")) or value < 0:
            raise PydanticCustomError(
                "bad_timestamp", "epoch timestamp must be a finite number >= 0"
            )
        seconds = value / 1000 if value >= _EPOCH_MS_THRESHOLD else value
        if seconds >= _YEAR_3000_S:
            raise PydanticCustomError("bad_timestamp", "epoch timestamp is beyond the year 3000")
        if isinstance(value, int):
            return value * 1_000_000 if value >= _EPOCH_MS_THRESHOLD else value * NS_PER_S
        return round(seconds * NS_PER_S)
    if isinstance(value, str):
        return _iso_to_ns(value)
    raise PydanticCustomError(
        "bad_timestamp", "timestamp must be ISO 8601 text or epoch seconds/ms"
    )


# The fraction is split off so all nine digits of a nanosecond timestamp (TTN's) survive:
# datetime keeps only microseconds.
_FRACTION_RE = re.compile(r"^(.{19})[.,](\d+)(.*)$")


def _iso_to_ns(text: str) -> int:
    fraction_ns = 0
    whole = text
    match = _FRACTION_RE.match(text)
    if match:
        digits = match[2]
        if len(digits) > 9:
            raise PydanticCustomError(
                "bad_timestamp", "timestamp has more than nanosecond precision"
            )
        fraction_ns = int(digits.ljust(9, "0"))
        whole = match[1] + match[3]
    try:
        parsed = datetime.fromisoformat(whole)
    except ValueError:
        raise PydanticCustomError(
            "bad_timestamp", "timestamp {value!r} is not ISO 8601", {"value": text[:40]}
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + fraction_ns


EventTimeNs = Annotated[int, BeforeValidator(timestamp_to_ns)]


FieldType = Literal["float", "int", "bool", "str"]


class Reading(BaseModel):
    """Base of every reading model: strict types, no NaN/inf, unknown fields ignored."""

    model_config = ConfigDict(
        strict=True, frozen=True, allow_inf_nan=False, extra="ignore", use_attribute_docstrings=True
    )

    measurement: ClassVar[str]
    """The raw measurement its points are stored in."""

    device_id: DeviceId | None = None
    """The device that measured it; when present it must match the topic's."""
    ts: EventTimeNs | None = None
    """When it was measured (device clock); missing means 'at arrival', and is flagged."""

    @classmethod
    def measurement_fields(cls) -> tuple[str, ...]:
        """The fields stored with each point, in declaration order."""
        return field_layout(cls).names

    @classmethod
    def field_types(cls) -> tuple[FieldType, ...]:
        """The stored type of each measurement field: it decides how line protocol writes it."""
        return field_layout(cls).types


@dataclass(frozen=True, slots=True)
class FieldLayout:
    names: tuple[str, ...]
    types: tuple[FieldType, ...]
    numeric: tuple[str, ...]
    """Fields stored as numbers (float, int, bool), in column order."""
    numeric_types: tuple[FieldType, ...]
    texts: tuple[str, ...]
    """Fields stored as text."""


@cache
def field_layout(model: type[Reading]) -> FieldLayout:
    """A model's stored fields and their types, worked out once per class (the hot path asks often)."""
    names = tuple(name for name in model.model_fields if name not in Reading.model_fields)
    types = tuple(_field_type(model.model_fields[name].annotation) for name in names)
    numeric = [(n, t) for n, t in zip(names, types, strict=True) if t != "str"]
    return FieldLayout(
        names=names,
        types=types,
        numeric=tuple(n for n, _t in numeric),
        numeric_types=tuple(t for _n, t in numeric),
        texts=tuple(n for n, t in zip(names, types, strict=True) if t == "str"),
    )


def _field_type(annotation: Any) -> FieldType:
    base = annotation
    if isinstance(base, types.UnionType) or get_origin(base) is Union:  # X | None: the X
        base = next(a for a in get_args(base) if a is not type(None))
    if get_origin(base) is Annotated:
        base = get_args(base)[0]
    if base is bool:
        return "bool"
    if base is int:
        return "int"
    if base is str:
        return "str"
    return "float"
