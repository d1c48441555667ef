"""What each kind's windows are written as: the fields of its aggregate points.

- air quality: mean, min, max and count per measured field;
- footfall: people in and out, net flow (in minus out), and how many seconds
  of counting the window holds; never below 15-minute windows (see pipeline);
- bins: last and highest fill, collections (sharp falls in fill), and, while
  the bin is filling, hours until full at the window's rate of rise.

Per window, not per reading: a batch emits a window at most once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from smartplace.ingest.windows.tumbling import WindowAggregates
from smartplace.lineprotocol import FieldValue, Precision, format_point
from smartplace.schemas.kinds import KINDS, AggregateShape

NS_PER_HOUR = 3_600 * 1_000_000_000


def window_lines(
    aggregates: WindowAggregates,
    sites: Mapping[str, str] | None = None,
    precision: Precision = "ns",
) -> list[str]:
    """One point per (device, window), at the window start, tagged with device and site."""
    sites = sites or {}
    fields_of = _FIELDS_OF[KINDS[aggregates.kind].aggregate]
    column = {name: k for k, name in enumerate(aggregates.fields)}
    lines = []
    for i, (device, start) in enumerate(
        zip(aggregates.device_ids.tolist(), aggregates.window_start_ns.tolist(), strict=True)
    ):
        fields = fields_of(aggregates, i, column)
        if fields:
            tags = {"device_id": device, "site": sites.get(device, "")}
            lines.append(format_point(aggregates.measurement, tags, fields, start, precision))
    return lines


def _measured(a: WindowAggregates, i: int, _column: dict[str, int]) -> dict[str, FieldValue]:
    fields: dict[str, FieldValue] = {}
    for k, name in enumerate(a.fields):
        count = int(a.count[i, k])
        if count:
            fields |= {
                f"{name}_mean": float(a.mean[i, k]),
                f"{name}_min": float(a.min[i, k]),
                f"{name}_max": float(a.max[i, k]),
                f"{name}_count": count,
            }
            if not np.isnan(a.p95[i, k]):
                fields[f"{name}_p95"] = round(float(a.p95[i, k]), 3)
    return fields


def _footfall(a: WindowAggregates, i: int, column: dict[str, int]) -> dict[str, FieldValue]:
    if not a.count[i, column["count_in"]]:
        return {}
    people_in = int(a.sum[i, column["count_in"]])
    people_out = int(a.sum[i, column["count_out"]])
    fields: dict[str, FieldValue] = {
        "count_in_sum": people_in,
        "count_out_sum": people_out,
        "net_flow": people_in - people_out,
        "interval_s_sum": int(a.sum[i, column["interval_s"]]),
        "readings": int(a.count[i, column["count_in"]]),
    }
    if a.count[i, column["occupancy"]]:
        fields["occupancy_max"] = int(a.max[i, column["occupancy"]])
    return fields


def _bin(a: WindowAggregates, i: int, column: dict[str, int]) -> dict[str, FieldValue]:
    fill = column["fill_pct"]
    if not a.count[i, fill]:
        return {}
    last, first = float(a.last[i, fill]), float(a.first[i, fill])
    fields: dict[str, FieldValue] = {
        "fill_pct_last": last,
        "fill_pct_max": float(a.max[i, fill]),
        "readings": int(a.count[i, fill]),
    }
    if "collected" in column:
        fields["collections"] = int(np.nan_to_num(a.sum[i, column["collected"]]))
    hours = (int(a.last_ts[i, fill]) - int(a.first_ts[i, fill])) / NS_PER_HOUR
    if last > first and hours > 0 and last < 100:  # only while rising
        fields["time_to_full_h"] = round((100 - last) / ((last - first) / hours), 2)
    for name, field in (("temperature_c", "temperature_c_max"), ("fire_alarm", "fire_alarms")):
        if name in column and a.count[i, column[name]]:
            k = column[name]
            fields[field] = float(a.max[i, k]) if field.endswith("max") else int(a.sum[i, k])
    return fields


_FIELDS_OF: dict[
    AggregateShape, Callable[[WindowAggregates, int, dict[str, int]], dict[str, FieldValue]]
] = {
    "measured": _measured,
    "counts": _footfall,
    "fill": _bin,
}
"""A window's fields, by the shape its kind's spec names."""
