"""SenML JSON (RFC 8428) on ``{prefix}/{kind}/{device_id}/senml``.

Two steps, each pure: ``resolve`` applies the base fields exactly as the RFC
says (section 4.6: name = bn + n, time = bt + t, unit = u or bu, value =
bv + v, sum = bs + s; a time below 2**28 is relative to now), and
``senml_candidates`` groups the resolved records by time into readings of
the topic's kind (and device status), mapping each record by its name and
unit onto a field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from smartplace.schemas.candidate import Candidate, Decoded, Refusal, source_text
from smartplace.schemas.device_status import DeviceStatusReading
from smartplace.schemas.reading import Reading
from smartplace.schemas.reasons import RejectReason

SENML_VERSION = 10
RELATIVE_TIME_LIMIT_S = 2**28  # RFC 8428 section 4.5.3
MAX_TIME_S = 9e9
"""Times beyond this (either side of 1970) are refused: nanoseconds past it overflow int64."""
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:./_-]*$")  # section 4.5.1
_VALUE_FIELDS = ("v", "vs", "vb", "vd")

# SenML unit -> (the suffix our field names carry, factor to our unit).
UNIT_SUFFIXES: dict[str, tuple[str, float]] = {
    "ug/m3": ("ugm3", 1.0),
    "Cel": ("c", 1.0),
    "%RH": ("pct", 1.0),
    "%": ("pct", 1.0),
    "%EL": ("pct", 1.0),
    "Pa": ("hpa", 0.01),
    "hPa": ("hpa", 1.0),
    "mm": ("mm", 1.0),
    "m": ("mm", 1000.0),
    "V": ("v", 1.0),
    "dBm": ("dbm", 1.0),
    "dB": ("db", 1.0),
    "s": ("s", 1.0),
    "/": ("", 1.0),
    "1": ("", 1.0),
    "count": ("", 1.0),
}
# Records that name nothing are known by their unit alone (as in RFC 8428's own examples).
UNIT_ONLY_FIELDS = {
    "%RH": "humidity_pct",
    "Cel": "temperature_c",
    "Pa": "pressure_hpa",
    "%EL": "battery_pct",
    "lat": "latitude",
    "lon": "longitude",
    "dBm": "rssi_dbm",
}


class SenmlError(ValueError):
    def __init__(
        self,
        message: str,
        index: int | None = None,
        reason: RejectReason = RejectReason.WRONG_SHAPE,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ResolvedRecord:
    """A record with its base fields applied (RFC 8428 section 4.6)."""

    name: str
    time_s: float
    unit: str | None
    value: float | str | bool | None
    value_field: str
    """Which of v, vs, vb, vd or s held the value."""
    local_name: str
    """The record's own ``n`` (without the base name): what field mapping looks at."""
    index: int


def resolve(document: Any, now_s: float) -> list[ResolvedRecord]:
    """Resolve a SenML pack; raises SenmlError saying which record breaks which rule."""
    return list(resolving(document, now_s))


def resolving(document: Any, now_s: float) -> Iterator[ResolvedRecord]:
    """resolve, a record at a time: a caller that has seen enough stops early (a 256 KiB
    pack can hold 10,000 records). Raises SenmlError at the first record that breaks a rule."""
    if not isinstance(document, list) or not document:
        raise SenmlError("a SenML pack is a non-empty JSON array of records")
    base_name, base_time, base_unit, base_value, base_sum = "", 0.0, None, None, None
    for index, record in enumerate(document):
        if not isinstance(record, dict):
            raise SenmlError("a SenML record must be a JSON object", index)
        must_understand = [key for key in record if key.endswith("_")]
        if must_understand:
            raise SenmlError(
                f"must-understand fields not supported: {', '.join(must_understand)}", index
            )
        if "bver" in record and (not _is_number(record["bver"]) or record["bver"] > SENML_VERSION):
            raise SenmlError(
                f"SenML version {record['bver']!r} is newer than {SENML_VERSION}", index
            )
        if "bn" in record:
            base_name = _text(record, "bn", index)
        if "bt" in record:
            base_time = _number(record, "bt", index)
        if "bu" in record:
            base_unit = _text(record, "bu", index)
        if "bv" in record:
            base_value = _number(record, "bv", index)
        if "bs" in record:
            base_sum = _number(record, "bs", index)
        local = _text(record, "n", index) if "n" in record else ""
        name = base_name + local
        if not _NAME_RE.fullmatch(name):
            raise SenmlError(
                f"resolved name {name!r} is empty or has characters SenML forbids", index
            )
        time_s = base_time + (_number(record, "t", index) if "t" in record else 0.0)
        if time_s < RELATIVE_TIME_LIMIT_S:
            time_s += now_s
        if not -MAX_TIME_S <= time_s <= MAX_TIME_S:  # NaN fails too
            raise SenmlError(
                f"resolved time {time_s:g} s is beyond what a timestamp can hold",
                index,
                RejectReason.BAD_TIMESTAMP,
            )
        unit = _text(record, "u", index) if "u" in record else base_unit
        present = [key for key in _VALUE_FIELDS if key in record]
        if len(present) > 1:
            raise SenmlError(f"a record has one value, this has {', '.join(present)}", index)
        value: float | str | bool | None
        if present == ["v"]:
            value, value_field = _number(record, "v", index) + (base_value or 0.0), "v"
        elif present:
            value_field = present[0]
            value = record[value_field]
            expected = bool if value_field == "vb" else str
            if not isinstance(value, expected):
                raise SenmlError(
                    f"{value_field} must be {'true/false' if expected is bool else 'text'}", index
                )
        elif "s" in record:
            value, value_field = _number(record, "s", index) + (base_sum or 0.0), "s"
        elif base_value is not None:
            value, value_field = base_value, "v"
        else:
            raise SenmlError("a record needs a value (v, vs, vb, vd) or a sum (s)", index)
        yield ResolvedRecord(name, time_s, unit, value, value_field, local, index)


def senml_candidates(
    document: Any,
    payload: bytes,
    model: type[Reading],
    kind: str,
    now_ns: int,
    max_readings: int = 1_000,
) -> Decoded:
    """The pack's readings (records grouped by time), or one batch_too_long refusal as soon as
    it makes more than ``max_readings`` readings and refused records together."""
    try:
        return _candidates(document, payload, model, kind, now_ns, max_readings)
    except SenmlError as exc:
        path = f"[{exc.index}]" if exc.index is not None else ""
        return [Refusal(exc.reason, f"SenML: {exc}", payload, path)]


def _candidates(
    document: Any,
    payload: bytes,
    model: type[Reading],
    kind: str,
    now_ns: int,
    max_readings: int,
) -> Decoded:
    kind_fields = set(model.measurement_fields())
    status_fields = set(DeviceStatusReading.measurement_fields())
    groups: dict[int, dict[type[Reading], tuple[dict[str, Any], list[Any]]]] = {}
    refusals: Decoded = []
    readings = 0
    too_many: Decoded = [
        Refusal(RejectReason.BATCH_TOO_LONG, f"more than {max_readings} readings", payload)
    ]
    for record in resolving(document, now_ns / 1e9):
        if readings + len(refusals) > max_readings:  # stop early: a pack can hold 20,000
            return too_many
        path = f"[{record.index}]"
        field, value = _map(record)
        if field in kind_fields:
            target: type[Reading] = model
        elif field in status_fields:
            target = DeviceStatusReading
        else:
            refusals.append(
                Refusal(
                    RejectReason.UNKNOWN_MEASUREMENT,
                    f"SenML record {record.name!r} ({record.unit or 'no unit'}) maps onto no field of "
                    f"{kind} or device_status",
                    source_text(document[record.index]),
                    path,
                )
            )
            continue
        time_ns = round(record.time_s * 1e6) * 1000  # float seconds hold about 0.2 us today
        by_model = groups.setdefault(time_ns, {})
        if target not in by_model:
            readings += 1
        values, sources = by_model.setdefault(target, ({}, []))
        if field in values:
            refusals.append(
                Refusal(
                    RejectReason.INVALID,
                    f"two SenML records give {field} at the same time",
                    source_text(document[record.index]),
                    path,
                )
            )
            continue
        values[field] = _as_declared(target, field, value)
        sources.append(document[record.index])
    if readings + len(refusals) > max_readings:
        return too_many
    candidates: Decoded = []
    for time_ns, by_model in groups.items():
        for target, (values, sources) in by_model.items():
            candidates.append(
                Candidate(
                    target, kind, values, source_text(sources), path="", envelope_ts_ns=time_ns
                )
            )
    return candidates + refusals


def _map(record: ResolvedRecord) -> tuple[str | None, Any]:
    """Our field name and value for a record, or (None, None) when it names nothing we store."""
    local = record.local_name.strip(":/._-").lower().replace(".", "").replace("-", "_")
    unit = record.unit or ""
    suffix, factor = UNIT_SUFFIXES.get(unit, (None, 1.0))
    if local and suffix is not None:
        field: str | None = f"{local}_{suffix}" if suffix else local
    else:
        field = UNIT_ONLY_FIELDS.get(unit)
    if field is None:
        return None, None
    value = record.value
    if isinstance(value, float) and factor != 1.0:
        value = value * factor
    return field, value


def _as_declared(model: type[Reading], field: str, value: Any) -> Any:
    """SenML numbers are all floats; a whole number for an integer field becomes an int."""
    kind_of = model.field_types()[model.measurement_fields().index(field)]
    if kind_of == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(record: dict[str, Any], key: str, index: int) -> float:
    value = record[key]
    if not _is_number(value):
        raise SenmlError(f"{key} must be a number", index)
    return float(value)


def _text(record: dict[str, Any], key: str, index: int) -> str:
    value = record[key]
    if not isinstance(value, str):
        raise SenmlError(f"{key} must be text", index)
    return value
