"""Windows and aggregates checked against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.windows.tumbling import (
    WindowAggregator,
    partial_aggregates,
    window_starts,
)
from smartplace.storage import window_label

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


def agg() -> WindowAggregator:
    return WindowAggregator("air_quality", ("pm25_ugm3", "no2_ugm3"), length_s=60, grace_s=30)


def add(
    aggregator: WindowAggregator,
    rows: list[tuple[str, int, float, float]],
    now_s: int | None = None,
):  # type: ignore[no-untyped-def]
    return aggregator.add(
        columns(rows), np.ones(len(rows), dtype=bool), None if now_s is None else now_s * S
    )


def test_a_window_is_emitted_once_the_devices_event_time_passes_its_end() -> None:
    a = agg()
    assert len(add(a, [("a", 0, 2.0, 20.0), ("a", 10, 4.0, NAN)])) == 0
    assert len(add(a, [("a", 40, 9.0, 40.0)])) == 0  # still inside [0, 60)
    done = add(a, [("a", 65, 1.0, NAN)])
    assert (done.window_start_ns // S).tolist() == [0]
    assert done.mean.tolist() == [[5.0, 30.0]]  # (2 + 4 + 9) / 3, (20 + 40) / 2
    assert done.min.tolist() == [[2.0, 20.0]]
    assert done.max.tolist() == [[9.0, 40.0]]
    assert done.count.tolist() == [[3, 2]]
    assert done.measurement == "air_quality_1m"
    assert len(add(a, [("a", 70, 1.0, NAN)])) == 0  # written already, and unchanged


def test_excluded_readings_stay_out_of_the_aggregate() -> None:
    a = agg()
    a.add(columns([("a", 0, 2.0, 1.0), ("a", 10, 500.0, 1.0)]), np.array([True, False]))
    done = add(a, [("a", 61, 1.0, 1.0)])
    assert done.mean[0, 0] == 2.0
    assert done.count.tolist() == [[1, 1]]


def test_late_within_grace_re_emits_and_beyond_grace_is_only_counted() -> None:
    a = agg()
    add(a, [("a", 10, 1.0, NAN)])
    first = add(a, [("a", 85, 1.0, NAN)])  # watermark 85: window 0 complete, open until 90
    assert first.mean[0, 0] == 1.0
    again = add(a, [("a", 20, 4.0, NAN)])  # late, within grace: the window changes
    assert (again.window_start_ns // S).tolist() == [0]
    assert again.mean[0, 0] == 2.5
    assert again.late_beyond_grace == 0
    add(a, [("a", 95, 1.0, NAN)])  # watermark 95 passes 60 + 30: window 0 is closed
    beyond = add(a, [("a", 30, 100.0, NAN)])
    assert beyond.late_beyond_grace == 1
    assert len(beyond) == 0  # the stored window keeps its value
    assert a.open_windows == 1  # only window 60 stays open


def test_one_devices_watermark_does_not_close_another_devices_windows() -> None:
    a = WindowAggregator("air_quality", ("pm25_ugm3", "no2_ugm3"), length_s=60, grace_s=0)
    add(a, [("a", 10, 1.0, NAN), ("b", 10, 7.0, NAN)])
    add(a, [("a", 200, 1.0, NAN)])
    assert len(add(a, [("b", 20, 9.0, NAN)])) == 0
    flushed = a.flush()
    assert dict(zip(flushed.device_ids.tolist(), flushed.mean[:, 0].tolist(), strict=True)) == {
        "a": 1.0,
        "b": 8.0,
    }


def test_a_quiet_devices_windows_are_closed_by_the_wall_clock() -> None:
    a = agg()
    add(a, [("a", 10, 3.0, NAN)], now_s=11)
    assert len(a.tick(89 * S)) == 0  # 60 + 30 not yet passed
    done = a.tick(90 * S)
    assert (done.device_ids.tolist(), done.mean[:, 0].tolist()) == (["a"], [3.0])
    assert a.open_windows == 0
    assert add(a, [("a", 20, 5.0, NAN)], now_s=91).late_beyond_grace == 1


def test_a_device_still_sending_history_is_not_closed_by_the_wall_clock() -> None:
    a = agg()
    now = 10**6  # a backfill: readings from long ago, arriving now
    add(a, [("a", 0, 1.0, NAN)], now_s=now)
    assert len(a.tick(now * S)) == 0  # arrived just now: not quiet
    add(a, [("a", 30, 3.0, NAN)], now_s=now)
    done = add(a, [("a", 61, 1.0, NAN)], now_s=now)
    assert done.mean[0, 0] == 2.0  # both halves of the minute, not just the first batch


def test_flush_writes_open_windows_and_keeps_them_open() -> None:
    a = agg()
    add(a, [("a", 10, 3.0, NAN)])
    flushed = a.flush()
    assert flushed.mean[0, 0] == 3.0
    assert np.isnan(flushed.mean[0, 1])  # no NO2 measured
    assert a.open_windows == 1
    assert len(a.flush()) == 0  # nothing changed since


def test_the_same_input_gives_the_same_points() -> None:
    rows = [(f"d{i % 7}", t, float(t % 13), float(i)) for i, t in enumerate(range(0, 600, 7))]
    outputs = []
    for _ in range(2):
        a = agg()
        first = add(a, rows[:40])
        second = add(a, rows[40:])
        last = a.flush()
        outputs.append(
            [
                (x.device_ids.tolist(), x.window_start_ns.tolist(), np.nan_to_num(x.mean).tolist())
                for x in (first, second, last)
            ]
        )
    assert outputs[0] == outputs[1]


def test_state_grows_past_its_initial_capacity_without_mixing_windows() -> None:
    a = WindowAggregator("air_quality", ("pm25_ugm3", "no2_ugm3"), length_s=60, grace_s=10**6)
    add(a, [(f"d{i:05d}", 0, float(i), NAN) for i in range(3000)], now_s=1)
    add(a, [("d02999", 5, 1.0, NAN)], now_s=2)
    out = a.flush()
    means = dict(zip(out.device_ids.tolist(), out.mean[:, 0].tolist(), strict=True))
    assert len(means) == 3000
    assert means["d00017"] == 17.0
    assert means["d02999"] == 1500.0
