"""Windows and aggregates checked against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from smartplace.ingest.columns import ReadingColumns
from smartplace.ingest.downsample import (
    WindowAggregator,
    partial_aggregates,
    window_label,
    window_starts,
)

S = 1_000_000_000
NAN = float("nan")


def columns(rows: list[tuple[str, int, float, float]]) -> ReadingColumns:
    """(device, seconds since epoch, pm25, no2) rows as a batch."""
    return ReadingColumns(
        measurement="air_quality",
        kind="air_quality",
        fields=("pm25_ugm3", "no2_ugm3"),
        field_types=("float", "float"),
        device_ids=np.array([r[0] for r in rows], dtype=np.str_),
        ts_ns=np.array([r[1] * S for r in rows], dtype=np.int64),
        values=np.array([[r[2], r[3]] for r in rows], dtype=np.float64),
        qc_flags=np.zeros(len(rows), dtype=np.uint32),
    )


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(60, "1m"), (900, "15m"), (3600, "1h"), (86400, "1d"), (90, "90s"), (7200, "2h")],
)
def test_window_label(seconds: int, label: str) -> None:
    assert window_label(seconds) == label


def test_window_starts_align_to_the_epoch() -> None:
    ts = np.array([0, 59, 60, 61, 3599, 3600], dtype=np.int64) * S
    assert (window_starts(ts, 60 * S) // S).tolist() == [0, 0, 60, 60, 3540, 3600]


def test_partial_aggregates_group_by_device_and_window_and_skip_missing_values() -> None:
    batch = columns(
        [
            ("b", 130, 4.0, NAN),  # b, window 120
            ("a", 10, 1.0, 10.0),  # a, window 0
            ("a", 70, 8.0, NAN),  # a, window 60
            ("a", 50, 3.0, 30.0),  # a, window 0
            ("a", 20, 2.0, NAN),  # a, window 0
        ]
    )
    p = partial_aggregates(batch.device_ids, batch.ts_ns, batch.values, 60 * S)
    assert p.device_ids.tolist() == ["a", "a", "b"]
    assert (p.window_start_ns // S).tolist() == [0, 60, 120]
    assert p.sums.tolist() == [[6.0, 40.0], [8.0, 0.0], [4.0, 0.0]]
    assert p.counts.tolist() == [[3, 2], [1, 0], [1, 0]]
    assert p.mins.tolist() == [[1.0, 10.0], [8.0, np.inf], [4.0, np.inf]]
    assert p.maxs.tolist() == [[3.0, 30.0], [8.0, -np.inf], [4.0, -np.inf]]


def test_a_window_filled_over_several_batches_is_re_emitted_with_its_full_aggregate() -> None:
    agg = WindowAggregator("air_quality", ("pm25_ugm3", "no2_ugm3"), length_s=60, grace_s=30)
    first = agg.add(columns([("a", 0, 2.0, 20.0), ("a", 10, 4.0, NAN)]), np.array([True, True]))
    assert first.mean.tolist() == [[3.0, 20.0]]
    second = agg.add(columns([("a", 40, 9.0, 40.0)]), np.array([True]))
    assert (second.window_start_ns // S).tolist() == [0]
    assert second.mean.tolist() == [[5.0, 30.0]]
    assert second.min.tolist() == [[2.0, 20.0]]
    assert second.max.tolist() == [[9.0, 40.0]]
    assert second.count.tolist() == [[3, 2]]
    assert second.measurement == "air_quality_1m"


def test_excluded_readings_stay_out_of_the_aggregate() -> None:
    agg = WindowAggregator("air_quality", ("pm25_ugm3", "no2_ugm3"), length_s=60, grace_s=30)
    out = agg.add(columns([("a", 0, 2.0, 1.0), ("a", 10, 500.0, 1.0)]), np.array([True, False]))
    assert out.mean[0, 0] == 2.0
    assert out.count.tolist() == [[1, 1]]


def test_late_readings_within_grace_update_the_window_and_beyond_grace_are_only_counted() -> None:
    agg = WindowAggregator("air_quality", ("pm25_ugm3", "no2_ugm3"), length_s=60, grace_s=30)
    agg.add(columns([("a", 10, 1.0, NAN)]), np.array([True]))
    agg.add(
        columns([("a", 85, 1.0, NAN)]), np.array([True])
    )  # watermark 85: window 0 open until 90
    within = agg.add(columns([("a", 20, 4.0, NAN)]), np.array([True]))
    assert (within.window_start_ns // S).tolist() == [0]
    assert within.mean[0, 0] == 2.5
    assert within.late_beyond_grace == 0
    agg.add(columns([("a", 95, 1.0, NAN)]), np.array([True]))  # watermark 95: window 0 closed
    beyond = agg.add(columns([("a", 30, 100.0, NAN)]), np.array([True]))
    assert beyond.late_beyond_grace == 1
    assert len(beyond) == 0  # nothing re-emitted: the stored window keeps its value
    assert agg.open_windows == 1  # only window 60 stays open


def test_one_device_closing_windows_leaves_another_devices_windows_open() -> None:
    agg = WindowAggregator("air_quality", ("pm25_ugm3", "no2_ugm3"), length_s=60, grace_s=0)
    agg.add(columns([("a", 10, 1.0, NAN), ("b", 10, 7.0, NAN)]), np.array([True, True]))
    agg.add(columns([("a", 200, 1.0, NAN)]), np.array([True]))
    late_for_b = agg.add(columns([("b", 20, 9.0, NAN)]), np.array([True]))
    assert late_for_b.mean[0, 0] == 8.0


def test_state_grows_past_its_initial_capacity_without_mixing_windows() -> None:
    agg = WindowAggregator("air_quality", ("pm25_ugm3", "no2_ugm3"), length_s=60, grace_s=10**6)
    rows = [(f"d{i:05d}", 0, float(i), NAN) for i in range(3000)]
    out = agg.add(columns(rows), np.ones(3000, dtype=bool))
    assert sorted(out.mean[:, 0].tolist()) == [float(i) for i in range(3000)]
    again = agg.add(columns([("d02999", 5, 1.0, NAN)]), np.array([True]))
    assert again.mean[0, 0] == 1500.0
