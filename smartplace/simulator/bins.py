"""Litter bins filling at a rate set by their site's busyness, emptied by collection rounds.

DOMAIN.md section 4: a saw-tooth, rising faster at lunchtime and weekends,
falling near-vertically at collection, with ultrasonic noise of a point or two.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from smartplace.simulator.footfall import WEEKDAY_FACTOR, shop_hours_shape


class BinGenerator:
    def __init__(
        self, device_ids: Sequence[str], seed: int = 0, collection_hours: tuple[int, ...] = (6,)
    ) -> None:
        self.device_ids = list(device_ids)
        self._rng = np.random.default_rng(seed)
        n = len(self.device_ids)
        self._fill = self._rng.uniform(5, 60, n)
        # Full in one to three days at an average hour.
        self._pct_per_hour = 100 / self._rng.uniform(24, 72, n) / 0.4
        self.collection_hours = collection_hours
        self._last_hour: int | None = None

    def readings(self, when: datetime, interval_s: int) -> list[dict[str, Any]]:
        hour = when.hour + when.minute / 60
        rise = (
            self._pct_per_hour
            * shop_hours_shape(hour)
            * WEEKDAY_FACTOR[when.weekday()]
            * interval_s
            / 3600
        )
        self._fill = np.minimum(
            100.0, self._fill + rise * self._rng.uniform(0.7, 1.3, len(self._fill))
        )
        if when.hour in self.collection_hours and self._last_hour != when.hour:
            # The round empties bins more than half full, leaving a little behind.
            emptied = self._fill > 50
            self._fill[emptied] = self._rng.uniform(0, 5, int(emptied.sum()))
        self._last_hour = when.hour
        measured = np.clip(self._fill + self._rng.normal(0, 1.0, len(self._fill)), 0, 100)
        temperature = (
            8 + 5 * np.sin(2 * np.pi * (hour - 9) / 24) + self._rng.normal(0, 0.5, len(self._fill))
        )
        ts = int(when.timestamp())
        return [
            {"device_id": d, "ts": ts, "fill_pct": f, "temperature_c": t, "tilt": False}
            for d, f, t in zip(
                self.device_ids,
                np.round(measured, 1).tolist(),
                np.round(temperature, 1).tolist(),
                strict=True,
            )
        ]
