"""Columns and rejects as InfluxDB line protocol, escaped exactly as the protocol demands.

Pure string building; the only per-reading loop in ingest that numpy cannot
replace. Tag values come from validated device ids and fixed names only:
nothing a device sends becomes a measurement or tag key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import orjson

from smartplace.devices.model import DeviceRecord
from smartplace.ingest.columns import FloatArray, ReadingColumns
from smartplace.schemas.reasons import Reject

REJECTS_MEASUREMENT = "ingest_rejects"
MAX_STRING_FIELD_CHARS = 256

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


def raw_lines(columns: ReadingColumns) -> list[str]:
    """One point per reading: measured fields, typed as the model declares them, plus ``qc_flags``.

    Values are turned into text a column at a time (orjson writes a float's
    shortest round-trip text, the same digits as repr, in C); only the final
    join is per reading. bench/downsample_serialise.py measured this 2.6x the
    per-value formatting it replaced.
    """
    n = len(columns)
    measurement = escape_measurement(columns.measurement)
    kind = escape_tag(columns.kind)
    missing = np.isnan(columns.values)
    present = np.count_nonzero(missing, axis=0) < n  # fields some reading has
    # A field no reading in the batch has (most of a model's, often) costs nothing per row.
    field_texts = [
        _column_text(escape_tag(name), kind_of, columns.values[:, k], missing[:, k])
        for k, (name, kind_of) in enumerate(zip(columns.fields, columns.field_types, strict=True))
        if present[k]
    ]
    gaps = columns.texts is not None or bool(missing[:, present].any())
    if columns.texts is not None:
        for k, name in enumerate(columns.text_fields):
            key = escape_tag(name) + "="
            texts = columns.texts[:, k].tolist()
            field_texts.append([None if t is None else key + string_field(t) for t in texts])
    sites = columns.sites.tolist() if columns.sites is not None else [""] * n
    prefixes = {
        (device, site): f"{measurement},device_id={escape_tag(device)},kind={kind}"
        + (f",site={escape_tag(site)} " if site else " ")
        for device, site in set(zip(columns.device_ids.tolist(), sites, strict=True))
    }
    flags, times = columns.qc_flags.tolist(), columns.ts_ns.tolist()
    tails = [f",qc_flags={f}i {t}" for f, t in zip(flags, times, strict=True)]
    rows = zip(columns.device_ids.tolist(), sites, tails, *field_texts, strict=True)
    if not gaps:  # every field left is measured in every reading
        return [
            prefixes[device, site] + ",".join(parts) + tail for device, site, tail, *parts in rows
        ]
    return [
        prefixes[device, site] + ",".join([p for p in parts if p is not None]) + tail
        for device, site, tail, *parts in rows
    ]


def _column_text(
    key: str, kind_of: str, column: FloatArray, missing: npt.NDArray[np.bool_]
) -> list[str | None]:
    """``key=value`` for each measured value of a column, None where it was not measured."""
    if kind_of == "float":
        texts = orjson.dumps(column.tolist())[1:-1].decode().split(",")  # NaN is written null
        if not missing.any():
            return [f"{key}={t}" for t in texts]
        return [None if t == "null" else f"{key}={t}" for t in texts]
    gaps = missing.tolist()
    if kind_of == "int":
        whole = np.where(missing, 0, column).astype(np.int64)
        texts = orjson.dumps(whole.tolist())[1:-1].decode().split(",")
        return [None if gap else f"{key}={t}i" for t, gap in zip(texts, gaps, strict=True)]
    return [
        None if gap else f"{key}={'true' if v else 'false'}"
        for v, gap in zip(column.tolist(), gaps, strict=True)
    ]


FieldValue = str | float | int | bool


def format_point(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], ts_ns: int
) -> str:
    """One line for one point: tags sorted by key (as InfluxDB stores them), fields typed by value.

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
    return f"{escape_measurement(measurement)}{tag_text} {','.join(parts)} {ts_ns}"


def reject_lines(rejects: Sequence[Reject], timestamps_ns: Sequence[int]) -> list[str]:
    """One point per reject, tagged only by its reason; what the device sent stays in fields.

    ``timestamps_ns`` must be distinct: two rejects with the same reason and
    time would otherwise overwrite each other.
    """
    lines = []
    for reject, ts in zip(rejects, timestamps_ns, strict=True):
        fields: dict[str, FieldValue] = {
            "count": 1,
            "topic": reject.topic,
            "detail": reject.detail,
            "payload": reject.payload_excerpt,
        }
        if reject.device_id is not None:
            fields["device_id"] = reject.device_id
        if reject.field_path:
            fields["field"] = reject.field_path
        lines.append(format_point(REJECTS_MEASUREMENT, {"reason": reject.reason.value}, fields, ts))
    return lines


DEVICE_INFO_MEASUREMENT = "device_info"


def device_info_lines(records: Sequence[tuple[DeviceRecord, int]]) -> list[str]:
    """Where each device stands and whether it is active, for maps: one point per registry update."""
    lines = []
    for record, ts in records:
        fields: dict[str, FieldValue] = {"status": record.status}
        if record.latitude is not None and record.longitude is not None:
            fields |= {"latitude": record.latitude, "longitude": record.longitude}
        if record.profile:
            fields["profile"] = record.profile
        tags = {"device_id": record.device_id, "kind": record.kind, "site": record.site or ""}
        lines.append(format_point(DEVICE_INFO_MEASUREMENT, tags, fields, ts))
    return lines


NS_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


_TAG_PAIR = re.compile(r"(?:[^,\\ ]|\\.)+=(?:[^,\\ ]|\\.)+")


def tag_value(line: str, key: str) -> str | None:
    """A tag's value read back from a line (unescaped); None when the line has no such tag."""
    head = re.match(r"(?:[^\\ ]|\\.)*", line)
    series = head.group(0) if head else ""
    for pair in _TAG_PAIR.findall(series):
        name, _, value = re.split(r"(?<!\\)(=)", pair, maxsplit=1)
        if re.sub(r"\\(.)", r"\1", name) == key:
            return re.sub(r"\\(.)", r"\1", value)
    return None


def with_precision(lines: Sequence[str], precision: str) -> list[str]:
    """Lines whose nanosecond timestamps are truncated to ``precision`` (ns leaves them as they are)."""
    divisor = NS_PER_UNIT[precision]
    if divisor == 1:
        return list(lines)
    out = []
    for line in lines:
        head, _, ts = line.rpartition(" ")
        out.append(f"{head} {int(ts) // divisor}")
    return out
