"""Counting values into the windows' quantile sketches: by bincount, exactly as np.add.at."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from smartplace.ingest.windows.sketch import BUCKETS
from smartplace.ingest.windows.tumbling import count_into


@given(
    st.integers(1, 40),
    st.integers(1, 3),
    st.integers(0, 3000),
    st.integers(0, 2**32 - 1),
)
def test_counts_are_those_of_add_at(groups: int, fields: int, values: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    capacity = 64
    rows = rng.permutation(capacity)[:groups]  # distinct, in any order
    group = rng.integers(0, groups, values)
    field = rng.integers(0, fields, values)
    bucket = rng.integers(0, BUCKETS, values)
    start = rng.integers(0, 5, (capacity, fields, BUCKETS)).astype(np.int32)
    counted, expected = start.copy(), start.copy()
    count_into(counted, rows, group, field, bucket)
    np.add.at(expected, (rows[group], field, bucket), 1)
    assert np.array_equal(counted, expected)
    assert counted.dtype == np.int32


def test_many_groups_and_few_values_and_none_at_all() -> None:
    sketch = np.zeros((64, 2, BUCKETS), dtype=np.int32)
    rows = np.arange(64)
    count_into(sketch, rows, np.array([63, 63]), np.array([1, 1]), np.array([BUCKETS - 1] * 2))
    count_into(sketch, rows[:0], rows[:0], rows[:0], rows[:0])
    assert sketch.sum() == 2
    assert sketch[63, 1, BUCKETS - 1] == 2
