"""What every reading shares: the device id and its timestamp.

Device ids are checked at the door against one strict pattern, so no id can
carry line-protocol or topic metacharacters into storage.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError

DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)

DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]

# Epoch numbers above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_EPOCH_MS_THRESHOLD = 1e11
_NS_PER_S = 1_000_000_000


def timestamp_to_ns(value: Any) -> int:
    """ISO 8601 text or epoch seconds/milliseconds as integer nanoseconds since the epoch (UTC).

    ISO text without a zone is taken as UTC (as Sensor.Community publishes it).
    """
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
        if seconds >= 32503680000:  # year 3000: beyond any clock we will meet
            raise PydanticCustomError("bad_timestamp", "epoch timestamp is beyond the year 3000")
        if isinstance(value, int):
            return value * 1_000_000 if value >= _EPOCH_MS_THRESHOLD else value * _NS_PER_S
        return round(seconds * _NS_PER_S)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError(
                "bad_timestamp", "timestamp {value!r} is not ISO 8601", {"value": value[:40]}
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1000
    raise PydanticCustomError(
        "bad_timestamp", "timestamp must be ISO 8601 text or epoch seconds/ms"
    )


EventTimeNs = Annotated[int, BeforeValidator(timestamp_to_ns)]


class Reading(BaseModel):
    """Base of every reading model: strict types, no NaN/inf, unknown fields ignored."""

    model_config = ConfigDict(strict=True, frozen=True, allow_inf_nan=False, extra="ignore")

    device_id: DeviceId | None = None
    """The device that measured it; when present it must match the topic's."""
    ts: EventTimeNs | None = None
    """When it was measured (device clock); missing means 'at arrival', and is flagged."""

    @classmethod
    def measurement_fields(cls) -> tuple[str, ...]:
        """The numeric fields stored and aggregated, in declaration order."""
        return tuple(name for name in cls.model_fields if name not in Reading.model_fields)
