"""A mergeable quantile sketch for window percentiles (the DDSketch construction).

Values fall into buckets whose bounds grow by a factor gamma = (1 + a) / (1 - a);
a bucket's estimate 2 * gamma**i / (gamma + 1) (scaled) is within the relative
accuracy a of every value in it, so a percentile read from the counts is within
a of the true nearest-rank percentile. Counts add, so windows merge across
batches with one np.add.at, in fixed memory per window (about 2 kB a field).
Values at or below the lowest bound share bucket 0; estimates are clamped to
the window's minimum and maximum, which makes the extremes exact.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from smartplace.ingest.decode.columns import FloatArray, IntArray

RELATIVE_ACCURACY = 0.02
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LOWEST = 0.1
"""ug/m3: smaller values (and small negatives) share the first bucket."""
HIGHEST = 1_000.0
"""ug/m3: the ceiling of the sensors and of the models' ranges."""
BUCKETS = int(np.ceil(np.log(HIGHEST / LOWEST) / np.log(GAMMA))) + 2


def bucket_of(values: FloatArray) -> IntArray:
    """The bucket of each value (NaN must be masked out by the caller)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.ceil(np.log(np.maximum(values, LOWEST) / LOWEST) / np.log(GAMMA))
    buckets: IntArray = np.clip(index, 0, BUCKETS - 1).astype(np.int64)
    return buckets


def bucket_estimate(index: IntArray) -> FloatArray:
    estimate: FloatArray = np.where(index > 0, LOWEST * 2 * GAMMA**index / (GAMMA + 1), LOWEST)
    return estimate


def quantile(
    counts: npt.NDArray[np.int32], q: float, low: FloatArray, high: FloatArray
) -> FloatArray:
    """Nearest-rank ``q`` quantile from bucket counts (..., BUCKETS), clamped to [low, high]; NaN where empty.

    ``counts`` is overwritten (cumulated in place): pass a copy you no longer need.
    """
    cumulative = np.cumsum(counts, axis=-1, out=counts)
    total = cumulative[..., -1]
    rank = np.maximum(np.ceil(q * total), 1)
    index = (cumulative < rank[..., None]).sum(axis=-1)
    estimate = np.clip(bucket_estimate(np.minimum(index, BUCKETS - 1)), low, high)
    result: FloatArray = np.where(total > 0, estimate, np.nan)
    return result
