"""People counted in and out at town-centre doorways, by hour and weekday, vectorised.

DOMAIN.md section 8: 2,000-10,000 a day at a typical town-centre site, busiest
around 12:00-14:00, Saturday the busiest day, quiet nights; in and out roughly
balance over a day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np


def shop_hours_shape(hour: float) -> float:
    """Relative footfall by hour of day: a broad midday peak, near nothing at night."""
    return float(0.03 + np.exp(-(((hour - 13.0) / 3.2) ** 2)))


WEEKDAY_FACTOR = (0.9, 0.9, 0.95, 1.0, 1.1, 1.35, 0.8)  # Monday .. Sunday


class FootfallGenerator:
    def __init__(self, device_ids: Sequence[str], seed: int = 0) -> None:
        self.device_ids = list(device_ids)
        self._rng = np.random.default_rng(seed)
        self._daily = self._rng.uniform(2_000, 10_000, len(self.device_ids))
        # The shape integrates to ~5.7 over a day; scale so a day sums to the site's total.
        self._per_hour = self._daily / 5.7

    def readings(self, when: datetime, interval_s: int) -> list[dict[str, Any]]:
        """Counts over the interval ending at ``when``."""
        hour = when.hour + when.minute / 60
        rate = (
            self._per_hour
            * shop_hours_shape(hour)
            * WEEKDAY_FACTOR[when.weekday()]
            * interval_s
            / 3600
        )
        count_in = self._rng.poisson(rate / 2)
        # Out lags in a little: people leave later in the day than they arrive.
        count_out = self._rng.poisson(rate / 2 * (0.85 if hour < 13 else 1.15))
        ts = int(when.timestamp())
        return [
            {"device_id": d, "ts": ts, "count_in": i, "count_out": o, "interval_s": interval_s}
            for d, i, o in zip(self.device_ids, count_in.tolist(), count_out.tolist(), strict=True)
        ]
