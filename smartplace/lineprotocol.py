"""InfluxDB line protocol: escaping and one point's text, exactly as the protocol demands.

The format alone, shared by every writer (ingest's stages, the demo's set-up,
tests). Tag values come from validated device ids and fixed names only:
nothing a device sends becomes a measurement or tag key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

MAX_STRING_FIELD_CHARS = 256

Precision = Literal["ns", "us", "ms", "s"]
NS_PER_UNIT: dict[str, int] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
"""Nanoseconds per unit of each timestamp precision a write may name."""

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
# Line protocol cannot carry a newline anywhere; other control characters only confuse readers.
_CONTROL = str.maketrans({chr(c): " " for c in (*range(0x20), 0x7F)})


def escape_measurement(name: str) -> str:
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_tag(text: str) -> str:
    """Escape a tag key, tag value or field key. A trailing backslash would escape the
    separator after it, and a newline would end the line, so both are refused."""
    if "\n" in text or "\r" in text or text.endswith("\\") or not text:
        raise ValueError(f"{text!r} cannot be a line-protocol tag or key")
    return text.translate(_TAG_ESCAPES)


def string_field(text: str, max_chars: int = MAX_STRING_FIELD_CHARS) -> str:
    """A quoted string field value: control characters blanked, quotes and backslashes escaped.

    A topic from a broker that does not check UTF-8 reaches us with its bad bytes as lone
    surrogates (the wire decodes with surrogateescape, so the spool keeps them exactly);
    each is written as '?', or the whole batch's body could not be encoded."""
    safe = text[:max_chars].encode("utf-8", "replace").decode("utf-8")
    return '"' + safe.translate(_CONTROL).translate(_STRING_ESCAPES) + '"'


FieldValue = str | float | int | bool


def format_point(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    ts_ns: int,
    precision: Precision = "ns",
) -> str:
    """One line for one point: tags sorted by key (as InfluxDB stores them), fields typed by value,
    the time in ``precision`` (truncated from nanoseconds).

    Text becomes a string field (control characters blanked), bool a boolean,
    int an integer (``i``), float a float. Empty tag values are left out.
    """
    tag_text = "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v)
    parts = []
    for key, value in fields.items():
        if isinstance(value, str):
            text = string_field(value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = f"{value}i"
        else:
            if not math.isfinite(value):  # one 'nan' would make InfluxDB refuse the whole batch
                raise ValueError(f"{key}={value}: line protocol has no NaN or infinity")
            text = repr(float(value))
        parts.append(f"{escape_tag(key)}={text}")
    ts = ts_ns // NS_PER_UNIT[precision]
    return f"{escape_measurement(measurement)}{tag_text} {','.join(parts)} {ts}"
