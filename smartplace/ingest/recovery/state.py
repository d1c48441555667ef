"""The pipeline's state as plain data: what a checkpoint saves, apart from the settings.

A pipeline is built from the current settings; its state (open windows,
quality histories, the delivery ledger, the registry as ingest knows it,
LoRaWAN frame counters, recent message digests) is poured into it from a
``Snapshot``: a JSON-able document plus named numpy arrays of plain numbers.
Nothing settings-derived is saved (window lengths are keys, the grace, the
maximum age and the decode limits come from the settings of the run that
loads it), so a setting changed between runs takes effect at the restart.

Format versions (``FORMAT_VERSION``, in the document as ``format``):

- 0: as 1, without the per-window ``dirty`` array (every open window was
  written again at its next emission). Migrated by marking every open window
  changed: it is written once more with the same values, which is harmless.
- 1: as 2, without ``shard``. Migrated with ``shard`` unknown (null): its windows are
  taken as this worker's, as version 1 took them.
- 2: as 3, without each window set's ``closed_through`` (per device, the latest end of a
  window closed), the ledger's ``ledger_through`` and ``ledger_resumed`` (``ledger.py``) and
  ``reject_ordinal``.
  Migrated with none known: a grace raised at that restart can still take in late readings
  for windows already written, as version 2 did, and the ledger's next points say they
  counted through arrival 0 until the next batch is counted.
- 3: the current layout, described key by key in ``export_pipeline``; ``shard`` is
  ``[workers, worker_index]`` as the state was saved. Restored under another sharding
  (``SMARTPLACE_INGEST__WORKERS`` changed), the open windows are dropped and rebuilt from
  InfluxDB: devices have moved between workers, and a device's new worker has no windows
  for it.

Loading checks every key, type and shape, and that the arrays agree with the
document (row and device counts, slots in range, windows on their boundaries):
a snapshot that does not fit raises ``StateFileError`` and is used not at all.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from smartplace.devices.model import DeviceRecord
from smartplace.errors import StateFileError
from smartplace.ingest.check.quality import QualityChecker
from smartplace.ingest.decode.slots import DeviceSlots
from smartplace.ingest.ledger import HOUR_NS, TOTALS
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.windows.site_daqi import _Site
from smartplace.ingest.windows.sketch import BUCKETS
from smartplace.ingest.windows.tumbling import WindowAggregator
from smartplace.schemas.device_status import DeviceStatusReading
from smartplace.schemas.kinds import KINDS, spec_of_model
from smartplace.schemas.reading import NS_PER_S, Reading, field_layout
from smartplace.schemas.ttn import TtnMemory

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
ALLOWED_DTYPES = frozenset({"<i8", "<f8", "|b1", "|u1", "<i4"})
"""The only array types a snapshot may hold: plain numbers (never objects, never pickles)."""
DIGEST_BYTES = 16


@dataclass(slots=True)
class Snapshot:
    document: dict[str, Any]
    """JSON-able: ints, strings, lists and dicts."""
    arrays: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


def aggregated_fields(kind: str) -> tuple[str, ...]:
    """The value columns a kind's windows hold: its model's numeric fields (bins: + collected)."""
    spec = KINDS[kind]
    numeric = field_layout(spec.model).numeric
    return (*numeric, "collected") if spec.collections else numeric


# -- the document's shape, checked on load ---------------------------------------------


def _on_an_hour(ns: int) -> int:
    if ns % HOUR_NS:
        raise ValueError("not the start of an hour")
    return ns


Nanos = Annotated[int, Field(ge=0, lt=1 << 63)]
"""A time in ns since the epoch, as InfluxDB can store it."""
Hour = Annotated[Nanos, AfterValidator(_on_an_hour)]
Int64 = Annotated[int, Field(ge=-(1 << 63), lt=1 << 63)]
Count = Annotated[int, Field(ge=0, lt=1 << 63)]


def _a_total(name: str) -> str:
    if name not in TOTALS:
        raise ValueError("not a running total the ledger keeps")
    return name


TotalName = Annotated[str, AfterValidator(_a_total)]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WindowsDoc(_Doc):
    kind: str
    length_s: int
    fields: list[str]
    devices: list[str]
    rows: int


class QualityDoc(_Doc):
    measurement: str
    fields: list[str]
    devices: list[str]


class SiteDoc(_Doc):
    site: str
    latest_ns: Int64
    due: list[Hour]


class StateDoc(_Doc):
    format: int
    shard: tuple[int, int] | None
    windows: list[WindowsDoc]
    quality: list[QualityDoc]
    bin_devices: list[str]
    sites: list[SiteDoc]
    ledger: list[tuple[str, Hour, dict[TotalName, Int64]]]
    ledger_touched: list[tuple[str, Hour]]
    ledger_through: tuple[Nanos, Nanos]
    ledger_resumed: list[tuple[str, Hour, Nanos, Nanos]]
    registry: list[dict[str, Any]]
    ttn_seen: list[tuple[str, str, Int64]]
    ttn_counters: list[tuple[str, Int64, dict[str, Int64]]]
    ttn_highest_f_cnt: list[tuple[str, str, Int64]]
    ttn_wraps: Count
    last_reject_ns: Nanos
    reject_ordinal: Count
    latest_arrival_ns: Nanos


# -- saving --------------------------------------------------------------------------


def export_pipeline(pipeline: Pipeline) -> Snapshot:
    """The pipeline's state as of now (call it on the writer thread, between batches)."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    windows = []
    for kind, aggregators in pipeline._aggregators.items():
        for aggregator in aggregators:
            if aggregator.rebuilding:
                continue  # partial: the next start rebuilds it again
            key = f"windows.{kind}.{aggregator.length_ns // NS_PER_S}"
            windows.append(_export_windows(aggregator, key, arrays))
    quality = []
    for measurement, checker in pipeline._quality.items():
        quality.append(_export_quality(measurement, checker, f"quality.{measurement}", arrays))
    fills = pipeline._collections._last_fill
    arrays["bins.last_fill"] = np.array(list(fills.values()), dtype=np.float64)
    sites = []
    # A site index being rebuilt is partial: the next start rebuilds it with the windows.
    daqi = {} if pipeline._daqi.rebuilding else pipeline._daqi._sites
    for index, (site, state) in enumerate(daqi.items()):
        hours = sorted(state.counts)
        n = len(pipeline._daqi.pollutants)
        arrays[f"daqi.{index}.hours"] = np.array(hours, dtype=np.int64).reshape(len(hours))
        arrays[f"daqi.{index}.sums"] = np.array(
            [state.sums[h] for h in hours], dtype=np.float64
        ).reshape(len(hours), n)
        arrays[f"daqi.{index}.counts"] = np.array(
            [state.counts[h] for h in hours], dtype=np.int64
        ).reshape(len(hours), n)
        sites.append({"site": site, "latest_ns": int(state.latest_ns), "due": sorted(state.due)})
    recent = pipeline._recent
    arrays["recent.digests"] = np.frombuffer(b"".join(recent._order), dtype=np.uint8).reshape(
        len(recent._order), DIGEST_BYTES
    )
    ledger = pipeline.ledger
    memory = pipeline.ttn.export_memory()
    document = {
        "format": FORMAT_VERSION,
        "shard": list(pipeline.shard),
        "windows": windows,
        "quality": quality,
        "bin_devices": list(fills),
        "sites": sites,
        "ledger": [[d, h, dict(totals)] for (d, h), totals in ledger._totals.items()],
        "ledger_touched": [[d, h] for d, h in sorted(ledger._touched)],
        "ledger_through": [ledger.through_ns, ledger.refused_through_ns],
        "ledger_resumed": [[d, h, t, r] for (d, h), (t, r) in sorted(ledger.resumed.items())],
        "registry": [r.model_dump(mode="json") for r in pipeline.directory.devices.values()],
        "ttn_seen": memory.seen,
        "ttn_counters": memory.counters,
        "ttn_highest_f_cnt": memory.highest_f_cnt,
        "ttn_wraps": memory.wraps,
        "last_reject_ns": pipeline._last_reject_ns,
        "reject_ordinal": pipeline._reject_ordinal,
        "latest_arrival_ns": pipeline._latest_arrival_ns,
    }
    return Snapshot(document, arrays)


def _export_windows(
    aggregator: WindowAggregator, key: str, arrays: dict[str, npt.NDArray[Any]]
) -> dict[str, Any]:
    a = aggregator
    rows = np.flatnonzero(a._row_slot >= 0)
    devices = len(a._slots)
    for name, array in (
        ("slot", a._row_slot[rows]),
        ("start_ns", a._row_start[rows]),
        ("dirty", a._row_dirty[rows]),
        ("sums", a._sums[rows]),
        ("mins", a._mins[rows]),
        ("maxs", a._maxs[rows]),
        ("counts", a._counts[rows]),
        ("first_ts", a._first_ts[rows]),
        ("first", a._first[rows]),
        ("last_ts", a._last_ts[rows]),
        ("last", a._last[rows]),
        ("sketch", a._sketch[rows]),
        ("watermark", a._watermark[:devices]),
        ("closed_through", a._closed_through[:devices]),
        ("last_arrival", a._last_arrival[:devices]),
    ):
        arrays[f"{key}.{name}"] = np.ascontiguousarray(array)
    return {
        "kind": a.kind,
        "length_s": a.length_ns // NS_PER_S,
        "fields": list(a.fields),
        "devices": list(a._slots.names),
        "rows": len(rows),
    }


def _export_quality(
    measurement: str, checker: QualityChecker, key: str, arrays: dict[str, npt.NDArray[Any]]
) -> dict[str, Any]:
    devices = len(checker._slots)
    for name in ("latest", "seen", "seen_next", "last_value", "run", "recent", "recent_next"):
        arrays[f"{key}.{name}"] = np.ascontiguousarray(getattr(checker, f"_{name}")[:devices])
    return {
        "measurement": measurement,
        "fields": list(checker.fields),
        "devices": list(checker._slots.names),
    }


# -- loading -------------------------------------------------------------------------


Migration = Callable[[Snapshot], Snapshot]


def _window_entries(snapshot: Snapshot) -> list[Any]:
    """An older document's ``windows`` list, for its migration: refused unless a list."""
    entries = snapshot.document.get("windows", [])
    if not isinstance(entries, list):
        raise StateFileError(f"format {snapshot.document.get('format')}: windows is not a list")
    return entries


def _v0_to_v1(snapshot: Snapshot) -> Snapshot:
    """Version 0 kept no ``dirty`` flag per open window: mark every one changed."""
    arrays = dict(snapshot.arrays)
    for windows in _window_entries(snapshot):
        if not isinstance(windows, dict):
            raise StateFileError("format 0: a windows entry is not an object")
        key = f"windows.{windows.get('kind')}.{windows.get('length_s')}"
        slots = arrays.get(f"{key}.slot")
        if slots is None or slots.ndim != 1:
            raise StateFileError(f"format 0: {key}.slot is missing")
        arrays[f"{key}.dirty"] = np.ones(len(slots), dtype=bool)
    return Snapshot({**snapshot.document, "format": 1}, arrays)


def _v1_to_v2(snapshot: Snapshot) -> Snapshot:
    """Version 1 did not say which worker saved it: unknown, taken as this one's."""
    return Snapshot({**snapshot.document, "format": 2, "shard": None}, snapshot.arrays)


def _v2_to_v3(snapshot: Snapshot) -> Snapshot:
    """Version 2 did not keep which windows were closed: none known, as version 2 ran."""
    arrays = dict(snapshot.arrays)
    for windows in _window_entries(snapshot):
        if not isinstance(windows, dict) or not isinstance(windows.get("devices"), list):
            raise StateFileError("format 2: a windows entry has no device list")
        key = f"windows.{windows.get('kind')}.{windows.get('length_s')}"
        never = np.iinfo(np.int64).min
        arrays[f"{key}.closed_through"] = np.full(len(windows["devices"]), never, dtype="<i8")
    ledger = {"ledger_through": [0, 0], "ledger_resumed": [], "reject_ordinal": 0}
    return Snapshot({**snapshot.document, **ledger, "format": 3}, arrays)


MIGRATIONS: dict[int, Migration] = {0: _v0_to_v1, 1: _v1_to_v2, 2: _v2_to_v3}
"""Format N -> N + 1. Add one per layout change and bump FORMAT_VERSION."""


def migrate(snapshot: Snapshot) -> Snapshot:
    """The snapshot in the current format; StateFileError when no migration reaches it."""
    version = snapshot.document.get("format")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StateFileError(f"state format {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise StateFileError(f"state format {version} is newer than this ingest's {FORMAT_VERSION}")
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StateFileError(f"no migration from state format {version}")
        snapshot = step(snapshot)
        log.info("state migrated from format %d to %d", version, version + 1)
        version += 1
    return snapshot


@dataclass(frozen=True, slots=True)
class Restored:
    windows: frozenset[tuple[str, int]]
    """(kind, window length s) whose open windows came back."""
    dropped: tuple[str, ...]
    """What was saved but is not configured any more, for the log."""
    ledger: bool = True
    """Whether the delivery ledger came back (not when devices moved between workers: the
    hours of a device new to this worker were counted by another, and are read back)."""


def restore_pipeline(pipeline: Pipeline, snapshot: Snapshot) -> Restored:
    """Pour a (migrated) snapshot into a pipeline just built from the current settings.

    All or nothing: everything is checked and built aside first, and the pipeline
    is changed only once every part fits. Raises StateFileError otherwise.
    """
    snapshot = migrate(snapshot)
    try:
        # From JSON, so strict mode takes its arrays for tuples (and no "5" for 5).
        doc = StateDoc.model_validate_json(orjson.dumps(snapshot.document))
    except (ValidationError, TypeError) as exc:
        raise StateFileError(f"state document: {_first_error(exc)}") from None
    arrays = _Arrays(snapshot.arrays)
    dropped: list[str] = []
    aggregators: dict[tuple[str, int], WindowAggregator] = {}
    resharded = doc.shard is not None and doc.shard != pipeline.shard
    if resharded:
        assert doc.shard is not None
        dropped.append(
            f"open windows and the delivery ledger (saved by worker {doc.shard[1]} of"
            f" {doc.shard[0]}, now worker {pipeline.shard[1]} of {pipeline.shard[0]}: devices"
            " have moved between workers)"
        )
    for windows in doc.windows:
        key = (windows.kind, windows.length_s)
        if key in aggregators:
            raise StateFileError(f"windows {key} saved twice")
        if resharded:
            continue
        if windows.length_s not in pipeline.window_lengths(windows.kind):
            dropped.append(f"{windows.kind} {windows.length_s} s windows (not configured now)")
            continue
        if tuple(windows.fields) != aggregated_fields(windows.kind):
            dropped.append(f"{windows.kind} {windows.length_s} s windows (other fields)")
            continue
        aggregators[key] = _restore_windows(pipeline, windows, arrays)
    checkers = {q.measurement: _restore_quality(q, arrays) for q in doc.quality}
    fills = arrays.take("bins.last_fill", "<f8", (len(doc.bin_devices),))
    sites = {s.site: _restore_site(i, s, arrays) for i, s in enumerate(doc.sites)}
    if resharded:
        sites = {}  # made from the windows' readings: rebuilt with them
    digests = arrays.take("recent.digests", "|u1", (-1, DIGEST_BYTES))
    for name, rows in (("ledger", doc.ledger), ("ledger_resumed", doc.ledger_resumed)):
        if len({(row[0], row[1]) for row in rows}) != len(rows):
            raise StateFileError(f"{name}: a device's hour is listed twice")
    if not {(d, h) for d, h in doc.ledger_touched} <= {(d, h) for d, h, _ in doc.ledger}:
        raise StateFileError("ledger_touched: an hour with no totals")
    try:
        records = [DeviceRecord.model_validate(r) for r in doc.registry]
    except ValidationError as exc:
        raise StateFileError(f"registry record: {_first_error(exc)}") from None

    # Everything fits: now change the pipeline.
    for aggregator in aggregators.values():
        install(pipeline, aggregator)
    pipeline._quality.update(checkers)
    pipeline._collections._last_fill.update(zip(doc.bin_devices, fills.tolist(), strict=True))
    pipeline._daqi._sites.update(sites)
    recent = pipeline._recent
    for digest in (bytes(row) for row in digests[-recent.remembered :]):
        if digest not in recent._seen:
            recent._seen.add(digest)
            recent._order.append(digest)
    if not resharded:
        _restore_ledger(pipeline, doc)
    for record in records:
        pipeline.directory.restore(record)
    pipeline.ttn.restore_memory(
        TtnMemory(
            seen=[list(k) for k in doc.ttn_seen],
            counters=[list(c) for c in doc.ttn_counters],
            highest_f_cnt=[list(h) for h in doc.ttn_highest_f_cnt],
            wraps=doc.ttn_wraps,
        )
    )
    pipeline._last_reject_ns = doc.last_reject_ns
    pipeline._reject_ordinal = doc.reject_ordinal
    pipeline._latest_arrival_ns = doc.latest_arrival_ns
    return Restored(frozenset(aggregators), tuple(dropped), ledger=not resharded)


def _restore_ledger(pipeline: Pipeline, doc: StateDoc) -> None:
    ledger = pipeline.ledger
    for device, hour, totals in doc.ledger:
        ledger._totals[device, hour] = Counter(totals)
    ledger._touched.update((d, h) for d, h in doc.ledger_touched)
    ledger.through_ns, ledger.refused_through_ns = doc.ledger_through
    for device, hour, through, refused in doc.ledger_resumed:
        ledger.resumed[device, hour] = (through, refused)
        ledger._resumed_until = max(ledger._resumed_until, through)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{exc.error_count()} errors, first at {where}: {error['msg']}"[:300]
    return str(exc)[:300]


def install(pipeline: Pipeline, aggregator: WindowAggregator) -> None:
    """Put restored or rebuilt windows in place of the pipeline's of the same kind and length
    (both built from the current settings)."""
    built = pipeline._aggregators_for(aggregator.kind, aggregated_fields(aggregator.kind))
    built[:] = [aggregator if a.length_ns == aggregator.length_ns else a for a in built]


def configured_windows(pipeline: Pipeline) -> dict[str, list[int]]:
    """Every aggregated kind's window lengths under the current settings."""
    return {kind: pipeline.window_lengths(kind) for kind in sorted(KINDS)}


class _Arrays:
    """The snapshot's arrays, each taken once with its type and shape checked."""

    def __init__(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self._arrays = arrays

    def take(self, name: str, dtype: str, shape: tuple[int, ...]) -> npt.NDArray[Any]:
        """The array ``name``, of ``dtype`` and ``shape`` (-1: any length there)."""
        array = self._arrays.get(name)
        if array is None:
            raise StateFileError(f"state array {name} is missing")
        if array.dtype.str != dtype:
            raise StateFileError(f"state array {name} is {array.dtype.str}, not {dtype}")
        if array.ndim != len(shape) or any(
            want not in (-1, got) for want, got in zip(shape, array.shape, strict=True)
        ):
            raise StateFileError(f"state array {name} has shape {array.shape}, not {shape}")
        return array


def _restore_windows(pipeline: Pipeline, doc: WindowsDoc, arrays: _Arrays) -> WindowAggregator:
    key = f"windows.{doc.kind}.{doc.length_s}"
    aggregator = pipeline.new_aggregator(doc.kind, aggregated_fields(doc.kind), doc.length_s)
    n, f, d = doc.rows, len(doc.fields), len(doc.devices)
    if len(set(doc.devices)) != d:
        raise StateFileError(f"{key}: a device is listed twice")
    quantiled = aggregator._sketch.shape[1]
    take = arrays.take
    slot = take(f"{key}.slot", "<i8", (n,))
    start = take(f"{key}.start_ns", "<i8", (n,))
    if n and (slot.min() < 0 or slot.max() >= d):
        raise StateFileError(f"{key}: a window's device slot is out of range")
    if np.any(start % aggregator.length_ns):
        raise StateFileError(f"{key}: a window does not start on its boundary")
    if len(set(zip(slot.tolist(), start.tolist(), strict=True))) != n:
        raise StateFileError(f"{key}: a window is saved twice")
    parts = {
        "_row_dirty": take(f"{key}.dirty", "|b1", (n,)),
        "_sums": take(f"{key}.sums", "<f8", (n, f)),
        "_mins": take(f"{key}.mins", "<f8", (n, f)),
        "_maxs": take(f"{key}.maxs", "<f8", (n, f)),
        "_counts": take(f"{key}.counts", "<i8", (n, f)),
        "_first_ts": take(f"{key}.first_ts", "<i8", (n, f)),
        "_first": take(f"{key}.first", "<f8", (n, f)),
        "_last_ts": take(f"{key}.last_ts", "<i8", (n, f)),
        "_last": take(f"{key}.last", "<f8", (n, f)),
        "_sketch": take(f"{key}.sketch", "<i4", (n, quantiled, BUCKETS)),
    }
    counted = parts["_counts"] > 0
    values = ("_sums", "_mins", "_maxs", *(("_first", "_last") if aggregator.track_order else ()))
    if np.any(parts["_counts"] < 0) or np.any(parts["_sketch"] < 0):
        raise StateFileError(f"{key}: a count is negative")
    if not all(_plain_numbers(parts[name][counted]) for name in values):
        raise StateFileError(f"{key}: a window holds a value no reading could give")
    watermark = take(f"{key}.watermark", "<i8", (d,))
    closed_through = take(f"{key}.closed_through", "<i8", (d,))
    last_arrival = take(f"{key}.last_arrival", "<i8", (d,))
    capacity = max(len(aggregator._row_slot), n)
    for name, rows in parts.items():
        # The saved rows go first; the rest are empty rows as a new aggregator has them.
        empty = getattr(aggregator, name)
        setattr(aggregator, name, np.concatenate([rows, empty[: capacity - n]]))
    aggregator._row_slot = _padded(slot, capacity, -1)
    aggregator._row_start = _padded(start, capacity, 0)
    aggregator._open = {
        (s, t): row for row, (s, t) in enumerate(zip(slot.tolist(), start.tolist(), strict=True))
    }
    aggregator._free = list(range(capacity - 1, n - 1, -1))
    aggregator._slots = DeviceSlots.in_order(doc.devices)
    devices = max(len(aggregator._watermark), d)
    aggregator._watermark = _padded(watermark, devices, np.iinfo(np.int64).min)
    aggregator._closed_through = _padded(closed_through, devices, np.iinfo(np.int64).min)
    aggregator._last_arrival = _padded(last_arrival, devices, np.iinfo(np.int64).min)
    return aggregator


def _plain_numbers(values: npt.NDArray[np.float64]) -> bool:
    """Finite, and far enough from the float range's end that adding readings cannot
    overflow it (line protocol has no infinity)."""
    return bool(np.all(np.abs(values) <= 1e300))


def _padded(array: npt.NDArray[Any], length: int, fill: object) -> npt.NDArray[Any]:
    extra = np.full((length - len(array), *array.shape[1:]), fill, dtype=array.dtype)
    return np.concatenate([array, extra])


def _restore_quality(doc: QualityDoc, arrays: _Arrays) -> QualityChecker:
    known: list[type[Reading]] = [*(spec.model for spec in KINDS.values()), DeviceStatusReading]
    models = {m.measurement: m for m in known}
    model = models.get(doc.measurement)
    if model is None:
        raise StateFileError(f"quality state for unknown measurement {doc.measurement!r}")
    numeric = field_layout(model).numeric
    if tuple(doc.fields) not in (numeric, (*numeric, "collected")):
        # The checks index values by field: other fields (another version's) cannot be used.
        raise StateFileError(f"quality state for {doc.measurement} has other fields")
    spec = spec_of_model(model)
    checker = QualityChecker(tuple(doc.fields), spec.checked_fields if spec is not None else ())
    key, d = f"quality.{doc.measurement}", len(doc.devices)
    if len(set(doc.devices)) != d:
        raise StateFileError(f"{key}: a device is listed twice")
    rules, checked = checker.rules, len(checker.checked)
    capacity = max(len(checker._latest), d)
    for name, dtype, shape, fill in (
        ("latest", "<i8", (d,), np.iinfo(np.int64).min),
        ("seen", "<i8", (d, rules.seen_timestamps), np.iinfo(np.int64).min),
        ("seen_next", "<i8", (d,), 0),
        ("last_value", "<f8", (d, checked), np.nan),
        ("run", "<i8", (d, checked), 0),
        ("recent", "<f8", (d, checked, rules.spike_history), np.nan),
        ("recent_next", "<i8", (d, checked), 0),
    ):
        setattr(
            checker, f"_{name}", _padded(arrays.take(f"{key}.{name}", dtype, shape), capacity, fill)
        )
    checker._slots = DeviceSlots.in_order(doc.devices)
    return checker


def _restore_site(index: int, doc: SiteDoc, arrays: _Arrays) -> _Site:
    key = f"daqi.{index}"
    hours = arrays.take(f"{key}.hours", "<i8", (-1,))
    sums = arrays.take(f"{key}.sums", "<f8", (len(hours), 4))
    counts = arrays.take(f"{key}.counts", "<i8", (len(hours), 4))
    if np.any(counts < 0) or not _plain_numbers(sums):
        raise StateFileError(f"{key}: a count is negative or a sum no reading could give")
    site = _Site(latest_ns=doc.latest_ns, due=set(doc.due))
    for hour, s, c in zip(hours.tolist(), sums, counts, strict=True):
        site.sums[hour], site.counts[hour] = s.copy(), c.copy()
    return site


__all__ = [
    "FORMAT_VERSION",
    "MIGRATIONS",
    "Restored",
    "Snapshot",
    "aggregated_fields",
    "export_pipeline",
    "migrate",
    "restore_pipeline",
]
