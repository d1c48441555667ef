"""Readings, rejects and registry updates as points (smartplace/lineprotocol.py's text).

Pure string building; the only per-reading loop in ingest that numpy cannot
replace.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import repeat

import numpy as np
import numpy.typing as npt
import orjson

from smartplace.devices.model import DeviceRecord
from smartplace.ingest.decode.columns import FloatArray, ReadingColumns
from smartplace.lineprotocol import (
    NS_PER_UNIT,
    FieldValue,
    Precision,
    escape_measurement,
    escape_tag,
    format_point,
    string_field,
)
from smartplace.schemas.reasons import Reject
from smartplace.storage import DEVICE_INFO, REJECTS


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive lines of one measurement; for readings, each line's device and the kind."""

    stop: int
    """Where the run ends in ``Points.lines`` (it starts where the one before ends)."""
    measurement: str
    kind: str | None = None
    devices: Sequence[str] | npt.NDArray[np.str_] | None = None
    """Readings only: the device of each line, in order (the columns' own array: read only
    when a line is refused, so not copied per batch)."""
    arrivals: Sequence[int] | npt.NDArray[np.int64] | None = None
    """Readings only: when each line's message arrived (ns), in order: its ledger hour."""


class Points:
    """Line-protocol lines as they will be written, with what each one is: its measurement and,
    for a reading, its kind and device. A refusal is settled from these, never from the text."""

    __slots__ = ("lines", "runs")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.runs: list[Run] = []

    def add(
        self,
        lines: list[str],
        measurement: str,
        kind: str | None = None,
        devices: Sequence[str] | npt.NDArray[np.str_] | None = None,
        arrivals: Sequence[int] | npt.NDArray[np.int64] | None = None,
    ) -> None:
        if not lines:
            return
        if devices is not None and len(devices) != len(lines):
            raise ValueError(f"{len(devices)} devices for {len(lines)} lines")
        if arrivals is not None and (devices is None or len(arrivals) != len(lines)):
            raise ValueError(f"arrivals for {len(lines)} lines of devices {devices is not None}")
        self.lines.extend(lines)
        self.runs.append(Run(len(self.lines), measurement, kind, devices, arrivals))

    def extend(self, other: Points) -> None:
        offset = len(self.lines)
        self.lines.extend(other.lines)
        self.runs.extend(replace(run, stop=run.stop + offset) for run in other.runs)

    def run_of(self, index: int) -> tuple[Run, int]:
        """The run a line belongs to, and the line's place within it."""
        if not 0 <= index < len(self.lines):
            raise IndexError(index)
        at = bisect_right(self.runs, index, key=lambda run: run.stop)
        start = self.runs[at - 1].stop if at else 0
        return self.runs[at], index - start

    def reading_device(self, index: int) -> str | None:
        """The device whose reading a line is; None for a line that is no reading."""
        run, place = self.run_of(index)
        return None if run.devices is None else str(run.devices[place])

    def reading_arrival(self, index: int) -> int | None:
        """When the message of a reading line arrived (ns); None when not known."""
        run, place = self.run_of(index)
        return None if run.arrivals is None else int(run.arrivals[place])

    def __len__(self) -> int:
        return len(self.lines)


def raw_lines(columns: ReadingColumns, precision: Precision = "ns") -> list[str]:
    """One point per reading: measured fields, typed as the model declares them, plus ``qc_flags``.

    Values are turned into text a column at a time (orjson writes a float's
    shortest round-trip text, the same digits as repr, in C); a batch whose
    readings all have the same fields is then one join per reading.
    """
    n = len(columns)
    measurement = escape_measurement(columns.measurement)
    kind = escape_tag(columns.kind)
    missing = np.isnan(columns.values)
    present = np.count_nonzero(missing, axis=0) < n  # fields some reading has
    sites = columns.sites.tolist() if columns.sites is not None else [""] * n
    devices = columns.device_ids.tolist()
    prefixes = {
        (device, site): f"{measurement},device_id={escape_tag(device)},kind={kind}"
        + (f",site={escape_tag(site)} " if site else " ")
        for device, site in set(zip(devices, sites, strict=True))
    }
    heads = list(map(prefixes.__getitem__, zip(devices, sites, strict=True)))
    flags = columns.qc_flags.tolist()
    times = (columns.ts_ns // NS_PER_UNIT[precision]).tolist()
    # A field no reading in the batch has (most of a model's, often) costs nothing per row.
    measured = [
        (escape_tag(name), kind_of, k)
        for k, (name, kind_of) in enumerate(zip(columns.fields, columns.field_types, strict=True))
        if present[k]
    ]
    if columns.texts is None and not missing[:, present].any():
        # Each line the texts of its columns and the constants between them, in one join.
        pieces: list[Iterable[str]] = [heads]
        between = ""  # what goes before a column's text: the end of the one before, its key
        for key, kind_of, k in measured:
            pieces += [repeat(f"{between}{key}="), _bare_text(kind_of, columns.values[:, k])]
            between = "i," if kind_of == "int" else ","
        pieces += [repeat(f"{between}qc_flags="), _int_texts(flags), repeat("i ")]
        pieces.append(_int_texts(times))
        return list(map("".join, zip(*pieces, strict=False)))  # repeat() never ends
    field_texts = [
        _column_text(key, kind_of, columns.values[:, k], missing[:, k])
        for key, kind_of, k in measured
    ]
    if columns.texts is not None:
        for k, name in enumerate(columns.text_fields):
            key = escape_tag(name) + "="
            texts = columns.texts[:, k].tolist()
            field_texts.append([None if t is None else key + string_field(t) for t in texts])
    tails = [f",qc_flags={f}i {t}" for f, t in zip(flags, times, strict=True)]
    return [
        head + ",".join([p for p in parts if p is not None]) + tail
        for head, tail, *parts in zip(heads, tails, *field_texts, strict=True)
    ]


def _int_texts(numbers: list[int]) -> list[str]:
    """Each integer's decimal text, in C."""
    return orjson.dumps(numbers)[1:-1].decode().split(",")


def _bare_text(kind_of: str, column: FloatArray) -> list[str]:
    """Each value of a column with no gaps as line-protocol text (an int's ``i`` not included)."""
    if kind_of == "float":
        return orjson.dumps(column.tolist())[1:-1].decode().split(",")
    if kind_of == "int":
        return orjson.dumps(column.astype(np.int64).tolist())[1:-1].decode().split(",")
    return ["true" if v else "false" for v in column.tolist()]


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


def reject_lines(
    rejects: Sequence[Reject],
    timestamps_ns: Sequence[int],
    ordinals: Sequence[int],
    precision: Precision = "ns",
) -> list[str]:
    """One point per reject, tagged by its reason; what the device sent stays in fields.

    ``timestamps_ns`` must be distinct, and ``ordinals`` number the rejects that
    share a unit of ``precision`` (0 for the first): the ordinal is tagged as
    ``seq`` from 1 on, so two rejects in one second at precision ``s`` are two
    points. At precision ``ns`` every ordinal is 0 and no point has the tag.
    """
    lines = []
    for reject, ts, ordinal in zip(rejects, timestamps_ns, ordinals, strict=True):
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
        tags = {"reason": reject.reason.value, "seq": str(ordinal) if ordinal else ""}
        lines.append(format_point(REJECTS, tags, fields, ts, precision))
    return lines


def device_info_lines(
    records: Sequence[tuple[DeviceRecord, int]], precision: Precision = "ns"
) -> list[str]:
    """Where each device stands and whether it is active, for maps: one point per registry update."""
    lines = []
    for record, ts in records:
        fields: dict[str, FieldValue] = {"status": record.status}
        if record.latitude is not None and record.longitude is not None:
            fields |= {"latitude": record.latitude, "longitude": record.longitude}
        if record.profile:
            fields["profile"] = record.profile
        tags = {"device_id": record.device_id, "kind": record.kind, "site": record.site or ""}
        lines.append(format_point(DEVICE_INFO, tags, fields, ts, precision))
    return lines
