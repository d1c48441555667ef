"""People counted in and out at town-centre doorways, by hour and weekday, vectorised.

DOMAIN.md section 8: 2,000-10,000 a day at a typical town-centre site (scaled
by the site's busyness), busiest around 12:00-14:00, Saturday the busiest day,
quiet nights; in and out balance over a day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from smartplace.simulator.air_quality import hours_and_weekdays
from smartplace.simulator.streams import stream

FIELDS = ("count_in", "count_out", "interval_s")
WEEKDAY_FACTOR = np.array([0.9, 0.9, 0.95, 1.0, 1.1, 1.35, 0.8])  # Monday .. Sunday


def shop_hours_shape(hour: np.ndarray | float) -> np.ndarray:
    """Relative footfall by hour of day: a broad midday peak, near nothing at night."""
    shape: np.ndarray = 0.03 + np.exp(-(((hour - 13.0) / 3.2) ** 2))
    return shape


class FootfallGenerator:
    fields = FIELDS

    def __init__(
        self, device_ids: Sequence[str], seed: int = 0, busyness: Sequence[float] | None = None
    ) -> None:
        self.device_ids = list(device_ids)
        n = len(self.device_ids)
        scale = np.asarray(busyness if busyness is not None else [1.0] * n)
        daily = stream(seed, "footfall", "sites", *self.device_ids[:1]).uniform(2_000, 10_000, n)
        # The shape sums to ~5.7 over a day: scale so a day sums to the site's total.
        self._per_hour = daily * scale / 5.7
        self._in = stream(seed, "footfall", "in")
        self._out = stream(seed, "footfall", "out")

    def block(self, ts_s: np.ndarray, interval_s: int) -> dict[str, np.ndarray]:
        """Counts over the interval ending at each of ``ts_s``, as (times, devices) arrays."""
        hour, weekday = hours_and_weekdays(ts_s)
        rate = self._per_hour * shop_hours_shape(hour) * WEEKDAY_FACTOR[weekday] * interval_s / 3600
        shape = (len(ts_s), len(self.device_ids))
        # Out lags in a little: people leave later in the day than they arrive.
        lag = np.where(hour < 13, 0.85, 1.15)
        return {
            "count_in": self._in.poisson(rate / 2, shape),
            "count_out": self._out.poisson(rate / 2 * lag, shape),
            "interval_s": np.full(shape, interval_s),
        }

    def readings(self, when: datetime, interval_s: int) -> list[dict[str, Any]]:
        """Counts over the interval ending at ``when``, as native payload bodies."""
        ts = int(when.timestamp())
        values = self.block(np.array([ts]), interval_s)
        return [
            {"device_id": d, "ts": ts, "count_in": i, "count_out": o, "interval_s": interval_s}
            for d, i, o in zip(
                self.device_ids,
                values["count_in"][0].tolist(),
                values["count_out"][0].tolist(),
                strict=True,
            )
        ]
