"""Readings, rejects and registry updates as points (smartplace/lineprotocol.py's text).

Pure string building; the only per-reading loop in ingest that numpy cannot
replace.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import orjson

from smartplace.devices.model import DeviceRecord
from smartplace.ingest.decode.columns import FloatArray, ReadingColumns
from smartplace.lineprotocol import (
    FieldValue,
    escape_measurement,
    escape_tag,
    format_point,
    string_field,
)
from smartplace.schemas.reasons import Reject

REJECTS_MEASUREMENT = "ingest_rejects"


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
