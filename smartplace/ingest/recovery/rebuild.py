"""Open windows rebuilt from the raw points in InfluxDB, when no saved state can be used.

Without the saved windows (no state file, a corrupt one, a format with no
migration, or a window length newly configured), a window open at the restart
would start again empty and its aggregate be written from only what arrives
after it, over the right value. Instead, once the spool's backlog is written
(so InfluxDB holds every reading received so far), each missing window length
is rebuilt from the raw retention policy:

- each device's watermark is the time of its latest raw point;
- the span read starts at the earliest window still open for any device (one
  ending after the device's watermark less the grace period, or one the
  replayed backlog touched), and every window wholly inside it is refilled
  from the raw points, in event time, as the live path filled them, and
  written again (for a newly configured length: written for the first time);
- a device quiet for longer than the longest window plus the grace period had
  its windows closed by the wall clock: they stay closed (a reading for one is
  late beyond grace).

Values the live path kept out of aggregates are kept out again from each
point's ``qc_flags``: a humid reading's optical PM, and a spike's or a
flatline's checked fields (all of them: the flag does not say which field it
was, so a rebuilt window may leave out a value the live one kept).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from smartplace.influx import InfluxClient, quote_identifier
from smartplace.ingest.check.quality import OPTICAL_PM_FIELDS
from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.decode.flags import QcFlag
from smartplace.ingest.recovery.state import aggregated_fields
from smartplace.ingest.windows.site_daqi import DAY_HOURS, HOUR_NS, SiteDaqi
from smartplace.ingest.windows.tumbling import WindowAggregator
from smartplace.ingest.write.aggregates import window_lines
from smartplace.ingest.write.points import Points
from smartplace.lineprotocol import Precision
from smartplace.schemas.kinds import KINDS
from smartplace.schemas.reading import NS_PER_S
from smartplace.storage import SITE_DAQI, window_label

log = logging.getLogger(__name__)

SLICE_NS = 3_600 * NS_PER_S
"""Raw points are read an hour at a time, so memory stays that of one hour's readings."""


def rebuild_windows(
    influx: InfluxClient,
    aggregators: Mapping[str, Iterable[WindowAggregator]],
    now_ns: int,
    sites: Mapping[str, str],
    replayed_from: Mapping[str, Mapping[str, int]],
    precision: Precision = "ns",
    site_daqi: SiteDaqi | None = None,
    ours: Callable[[str], bool] | None = None,
) -> Points:
    """Refill ``aggregators`` (empty, per kind) from raw points; the aggregates they make due.

    Those aggregates hold every reading of their windows, so writing them is right
    (some were perhaps not written before the restart). ``replayed_from``: per kind and
    device, the earliest event time the replay before the rebuild held (its windows'
    aggregates were held back, so they are rebuilt and written too). ``site_daqi`` (empty,
    rebuilding): refilled with the site index's last day before the first window rebuilt.
    ``ours``: whether a device is this worker's (None: every device is); another worker's
    devices are left to it, since windows held here for them would be written from partial
    data.
    """
    points = Points()
    for kind, of_kind in aggregators.items():
        targets = list(of_kind)
        if targets:
            replayed = replayed_from.get(kind, {})
            daqi = site_daqi if KINDS[kind].site_index else None
            start_ns = _rebuild_kind(
                influx, kind, targets, now_ns, sites, replayed, precision, points, ours, daqi
            )
            if daqi is not None:
                _rebuild_site_daqi(influx, daqi, start_ns, points, ours)
    if site_daqi is not None and site_daqi.rebuilding:  # no kind of its had open windows
        site_daqi.rebuilding = False
    return points


def _rebuild_site_daqi(
    influx: InfluxClient,
    daqi: SiteDaqi,
    from_ns: int | None,
    into: Points,
    ours: Callable[[str], bool] | None = None,
) -> None:
    """The site index, given the windows' span from ``from_ns`` by ``_rebuild_kind``, given
    the day before it too (its longest running mean), quality exclusions as the live path
    makes them; the hours from ``from_ns`` are written again, whole."""
    if from_ns is None:
        daqi.rebuilding = False
        return
    kind = next(name for name, spec in KINDS.items() if spec.site_index)
    raw = _raw_series(influx, kind)
    fields = aggregated_fields(kind)
    first_hour = from_ns - from_ns % HOUR_NS
    points = 0
    for slice_start in range(first_hour - DAY_HOURS * HOUR_NS, from_ns, SLICE_NS):
        rows = influx.query_rows(
            f"SELECT * FROM {raw} WHERE time >= $start AND time < $end GROUP BY *",  # noqa: S608
            {"start": slice_start, "end": min(slice_start + SLICE_NS, from_ns)},
        )
        if ours is not None:
            rows = [r for r in rows if ours(str(r.get("device_id")))]
        columns = _columns(kind, fields, rows)
        points += len(columns)
        daqi.add(columns)
    into.add(daqi.resume(from_ns), SITE_DAQI)
    log.warning(
        "REBUILT the hourly site air quality index from the windows' raw points and %d more"
        " from the day before, from %d s since the epoch: no saved state could be used for it",
        points,
        first_hour // NS_PER_S,
    )


def _rebuild_kind(
    influx: InfluxClient,
    kind: str,
    aggregators: list[WindowAggregator],
    now_ns: int,
    sites: Mapping[str, str],
    replayed: Mapping[str, int],
    precision: Precision,
    into: Points,
    ours: Callable[[str], bool] | None = None,
    site_daqi: SiteDaqi | None = None,
) -> int | None:
    """Refill one kind's windows; the aggregates they make due go ``into`` the points, and
    every reading of the span read into ``site_daqi`` as well (it is read once for both).
    Returns where the rebuilt span began (None when no device had open windows)."""
    raw = _raw_series(influx, kind)
    grace_ns = aggregators[0].grace_ns
    longest_ns = max(a.length_ns for a in aggregators)
    latest = {
        str(row["device_id"]): int(row["time"])
        for row in influx.query_rows(
            f'SELECT last("qc_flags") FROM {raw} GROUP BY "device_id"'  # noqa: S608 - quoted names
        )
        if row.get("device_id") and (ours is None or ours(str(row["device_id"])))
    }
    horizon_ns = now_ns - longest_ns - grace_ns
    quiet = {d: ts for d, ts in latest.items() if ts < horizon_ns and d not in replayed}
    # From the earlier of its watermark and what the replay brought.
    active = {d: min(ts, replayed.get(d, ts)) for d, ts in latest.items() if d not in quiet}
    for aggregator in aggregators:
        _close_quiet(aggregator, quiet)
        _heard(aggregator, active, now_ns)
    labels = ", ".join(window_label(a.length_ns // NS_PER_S) for a in aggregators)
    if not active:
        log.info("rebuilt %s windows of %s: no device has open windows", labels, kind)
        return None
    # Per device and length: the first window still open (it ends after watermark - grace),
    # or the first the replay touched.
    first_open = {
        a.length_ns: {
            d: (ts - grace_ns) - (ts - grace_ns) % a.length_ns for d, ts in active.items()
        }
        for a in aggregators
    }
    start_ns = min(min(starts.values()) for starts in first_open.values())
    active_ids = np.array(list(active), dtype=np.str_)
    for aggregator in aggregators:
        # Windows ending before the span read are not refilled: they were written.
        refilled_from = -(-start_ns // aggregator.length_ns) * aggregator.length_ns
        slots = aggregator._slots_for(active_ids)
        _closed_through(aggregator, slots, np.full(len(slots), refilled_from, dtype=np.int64))
    fields = aggregated_fields(kind)
    points = 0
    for slice_start in range(start_ns, max(now_ns, start_ns) + 1, SLICE_NS):
        last_slice = slice_start + SLICE_NS > now_ns
        until = "" if last_slice else " AND time < $end"
        rows = influx.query_rows(
            f"SELECT * FROM {raw} WHERE time >= $start{until} GROUP BY *",  # noqa: S608
            {"start": slice_start, "end": slice_start + SLICE_NS},
        )
        if site_daqi is not None:
            mine = rows if ours is None else [r for r in rows if ours(str(r.get("device_id")))]
            site_daqi.add(_columns(kind, fields, mine))
        columns = _columns(kind, fields, [r for r in rows if str(r.get("device_id")) in active])
        points += len(columns)
        for aggregator in aggregators:
            # Every window wholly in the span read is complete: it is written again (the same
            # values, or, for a newly configured length, its first aggregate).
            keep = columns.ts_ns >= -(-start_ns // aggregator.length_ns) * aggregator.length_ns
            part = _subset(columns, keep)
            aggregates = aggregator.add(part, np.ones(len(part), dtype=bool))
            lines = window_lines(aggregates, sites, precision)
            into.add(lines, aggregates.measurement)
        if last_slice:
            break
    log.warning(
        "REBUILT %s windows of %s from %d raw points in InfluxDB (%d devices with open"
        " windows, from %d s since the epoch): no saved state could be used for them",
        labels,
        kind,
        points,
        len(active),
        start_ns // NS_PER_S,
    )
    return start_ns


def _heard(aggregator: WindowAggregator, active: Mapping[str, int], now_ns: int) -> None:
    """Devices with open windows count as heard at the rebuild, as the live path counts a
    device at each batch: the wall clock closes their windows once a grace period passes
    without readings, not at the first batch of another device (they were never heard
    here, and their backlog may still be on its way)."""
    if active:
        slots = aggregator._slots_for(np.array(list(active), dtype=np.str_))
        aggregator._last_arrival[slots] = now_ns


def _raw_series(influx: InfluxClient, kind: str) -> str:
    """Where ingest writes a kind's raw points: its model's measurement (not always its name)."""
    policy = quote_identifier(influx.settings.raw_retention_policy)
    return f"{policy}.{quote_identifier(KINDS[kind].model.measurement)}"


def _close_quiet(aggregator: WindowAggregator, quiet: Mapping[str, int]) -> None:
    """Devices quiet for longer than a window: their windows up to the latest are closed."""
    if not quiet:
        return
    slots = aggregator._slots_for(np.array(list(quiet), dtype=np.str_))
    latest = np.array(list(quiet.values()), dtype=np.int64)
    np.maximum.at(aggregator._watermark, slots, latest)
    _closed_through(
        aggregator, slots, latest - latest % aggregator.length_ns + aggregator.length_ns
    )


def _closed_through(aggregator: WindowAggregator, slots: np.ndarray, ends: np.ndarray) -> None:
    """Windows ending at or before ``ends`` were written: a late reading never reopens
    them, whatever the grace (as the live path keeps it for the windows it closes)."""
    np.maximum.at(aggregator._closed_through, slots, ends)


def _columns(kind: str, fields: tuple[str, ...], rows: list[dict[str, Any]]) -> ReadingColumns:
    """Raw points as the columns the live path aggregated, excluded values already NaN."""
    values = np.full((len(rows), len(fields)), np.nan)
    for k, name in enumerate(fields):
        values[:, k] = [_number(row.get(name)) for row in rows]
    flags = np.array([int(row.get("qc_flags") or 0) for row in rows], dtype=np.uint32)
    humid = (flags & np.uint32(QcFlag.HUMIDITY_ARTEFACT)) != 0
    suspect = (flags & np.uint32(QcFlag.SPIKE | QcFlag.FLATLINE)) != 0
    for k, name in enumerate(fields):
        if name in OPTICAL_PM_FIELDS:
            values[humid, k] = np.nan
        if name in KINDS[kind].checked_fields:
            values[suspect, k] = np.nan
    return ReadingColumns(
        measurement=KINDS[kind].model.measurement,
        kind=kind,
        fields=fields,
        field_types=tuple("float" for _ in fields),
        device_ids=np.array([str(row["device_id"]) for row in rows], dtype=np.str_),
        ts_ns=np.array([int(row["time"]) for row in rows], dtype=np.int64),
        values=values,
        qc_flags=flags,
        sites=np.array([str(row.get("site") or "") for row in rows], dtype=np.str_),
    )


def _number(value: object) -> float:
    if isinstance(value, bool | int | float):
        return float(value)
    return float("nan")


def _subset(columns: ReadingColumns, keep: np.ndarray) -> ReadingColumns:
    return ReadingColumns(
        measurement=columns.measurement,
        kind=columns.kind,
        fields=columns.fields,
        field_types=columns.field_types,
        device_ids=columns.device_ids[keep],
        ts_ns=columns.ts_ns[keep],
        values=columns.values[keep],
        qc_flags=columns.qc_flags[keep],
    )


def missing_windows(
    configured: Mapping[str, Iterable[int]], restored: Iterable[tuple[str, int]]
) -> dict[str, list[int]]:
    """The (kind -> window lengths) configured now that no saved state covers."""
    have = defaultdict(set)
    for kind, length_s in restored:
        have[kind].add(length_s)
    return {
        kind: missing
        for kind, lengths in configured.items()
        if (missing := [s for s in lengths if s not in have[kind]])
    }
