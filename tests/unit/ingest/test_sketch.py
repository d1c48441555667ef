"""The 95th percentile of a window: the sketch's guarantee, checked on values chosen by hand."""

from __future__ import annotations

import numpy as np
import pytest

from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.windows.sketch import BUCKETS, RELATIVE_ACCURACY, bucket_of, quantile
from smartplace.ingest.windows.tumbling import WindowAggregator

S = 1_000_000_000


def sketch(values: list[float]) -> np.ndarray:
    counts = np.zeros(BUCKETS, dtype=np.int32)
    np.add.at(counts, bucket_of(np.array(values)), 1)
    return counts


def p95(values: list[float]) -> float:
    return float(quantile(sketch(values), 0.95, np.array(min(values)), np.array(max(values))))


def test_p95_of_1_to_100_is_95_within_the_sketch_accuracy() -> None:
    # Nearest rank: ceil(0.95 * 100) = the 95th smallest value, 95.
    assert p95([float(v) for v in range(1, 101)]) == pytest.approx(95, rel=RELATIVE_ACCURACY)


@pytest.mark.parametrize("values", [[7.3] * 20, [-3.0, -2.5, -2.0], [0.0, 0.05, 0.1]])
def test_windows_of_one_value_or_of_tiny_values_are_exact_at_their_maximum(
    values: list[float],
) -> None:
    # 95 % of 20 identical values: that value. Small or negative values share the lowest bucket,
    # whose estimate is clamped to the window's maximum.
    assert p95(values) == max(values)


def test_a_high_tail_is_caught() -> None:
    # 19 quiet minutes and one firework: nearest rank 19 of 20 is still quiet; with 2 fireworks it is not.
    assert p95([10.0] * 19 + [400.0]) == pytest.approx(10, rel=RELATIVE_ACCURACY)
    assert p95([10.0] * 18 + [400.0] * 2) == pytest.approx(400, rel=RELATIVE_ACCURACY)


def test_the_windows_p95_merges_across_batches_and_resets_when_a_window_closes() -> None:
    agg = WindowAggregator(
        "air_quality", ("pm25_ugm3", "temperature_c"), 60, 0, quantile_fields=("pm25_ugm3",)
    )

    def add(rows: list[tuple[int, float]]):  # type: ignore[no-untyped-def]
        return agg.add(
            ReadingColumns(
                "air_quality",
                "air_quality",
                ("pm25_ugm3", "temperature_c"),
                ("float", "float"),
                np.array(["a"] * len(rows)),
                np.array([t * S for t, _ in rows], dtype=np.int64),
                np.array([[v, 10.0] for _, v in rows]),
                np.zeros(len(rows), dtype=np.uint32),
            ),
            np.ones(len(rows), dtype=bool),
        )

    add([(t, float(t + 1)) for t in range(0, 30)])  # 1..30
    done = add(
        [(t, float(t + 1)) for t in range(30, 60)] + [(60, 5.0)]
    )  # 31..60, then the next minute
    assert done.p95[0, 0] == pytest.approx(
        57, rel=RELATIVE_ACCURACY
    )  # ceil(0.95 * 60) = 57th of 1..60
    assert np.isnan(done.p95[0, 1])  # temperature is not sketched
    following = agg.add(
        ReadingColumns(
            "air_quality",
            "air_quality",
            ("pm25_ugm3", "temperature_c"),
            ("float", "float"),
            np.array(["a"]),
            np.array([121 * S], dtype=np.int64),
            np.array([[1.0, 1.0]]),
            np.zeros(1, dtype=np.uint32),
        ),
        np.ones(1, dtype=bool),
    )
    assert following.p95[0, 0] == 5.0  # the window of 60..119 held only 5.0: nothing carried over
