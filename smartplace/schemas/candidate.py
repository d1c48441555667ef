"""What an input format makes of a payload: candidate readings for the models to validate,
or a refusal of the payload (or of one part of it) with a reason.

Formats never validate values themselves: every format's candidates go
through the same pydantic models, so a reading is judged the same way
whichever way it arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from smartplace.schemas.reading import Reading
from smartplace.schemas.reasons import RejectReason


@dataclass(slots=True)  # not frozen: made per reading, and a frozen one took 4x as long to make
class Candidate:
    model: type[Reading]
    kind: str
    """The device kind, stored as the kind tag."""
    values: dict[str, Any]
    """Field values to validate, named as the model names them."""
    source: bytes | None
    """The part of the payload it came from, for a reject's excerpt; None when that part is
    ``values`` itself (an item of a native array), serialised only if it is rejected."""
    path: str = ""
    """Where in the payload it came from, prefixed to a reject's field path."""
    envelope_ts_ns: int | None = None
    """A time the envelope vouches for (TTN received_at), used when the reading has no ts."""

    def source_bytes(self) -> bytes:
        return self.source if self.source is not None else source_text(self.values)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: RejectReason
    detail: str
    source: bytes
    path: str = ""


Decoded = list[Candidate | Refusal]
"""A format's verdict on one payload, in payload order."""


TOO_DEEP_TO_SHOW = b"(nested too deeply to show)"
"""An excerpt's stand-in for a part orjson will not write back (deeper than 255 levels)."""


def source_text(value: Any) -> bytes:
    """A parsed part of a payload as JSON again, for a reject's excerpt.

    orjson reads 1,024 levels of nesting but writes only 255, so a part a
    device may legally send can fail to be written back: the excerpt then
    says so rather than the reject being lost.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return TOO_DEEP_TO_SHOW


def join_path(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"
