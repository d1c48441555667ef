"""Litter bins filling at a rate set by their site's busyness, emptied by collection rounds.

DOMAIN.md section 4: a saw-tooth, rising faster at lunchtime and weekends,
falling near-vertically at collection, with ultrasonic noise of a point or
two. Between rounds the true fill only rises (to 100 %); the measured fill
wobbles around it by the sensor's noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from smartplace.simulator.air_quality import hours_and_weekdays
from smartplace.simulator.footfall import WEEKDAY_FACTOR, shop_hours_shape
from smartplace.simulator.streams import stream

FIELDS = ("fill_pct", "temperature_c", "tilt")
NOISE_PCT = 1.0
"""Standard deviation of the ultrasonic reading around the true fill, in points."""


class BinGenerator:
    fields = FIELDS

    def __init__(
        self,
        device_ids: Sequence[str],
        seed: int = 0,
        collection_hours: tuple[int, ...] = (6,),
        busyness: Sequence[float] | None = None,
    ) -> None:
        self.device_ids = list(device_ids)
        n = len(self.device_ids)
        scale = np.asarray(busyness if busyness is not None else [1.0] * n)
        sites = stream(seed, "bin", "sites", *self.device_ids[:1])
        self._fill = sites.uniform(5, 60, n)
        # Full in one to three days at an average hour, faster where the site is busier.
        self._pct_per_hour = 100 / sites.uniform(24, 72, n) / 0.4 * scale
        self.collection_hours = collection_hours
        self._last_hour: int | None = None
        self._rise = stream(seed, "bin", "rise")
        self._emptied = stream(seed, "bin", "emptied")
        self._noise = stream(seed, "bin", "noise")
        self._temperature = stream(seed, "bin", "temperature")

    def block(self, ts_s: np.ndarray, interval_s: int) -> dict[str, np.ndarray]:
        """Fill, temperature and tilt at each of ``ts_s`` as (times, devices) arrays; the bins'
        fill carries on from the previous block."""
        n, t = len(self.device_ids), len(ts_s)
        hour, weekday = hours_and_weekdays(ts_s)
        rise = (
            self._pct_per_hour
            * shop_hours_shape(hour)
            * WEEKDAY_FACTOR[weekday]
            * interval_s
            / 3600
            * self._rise.uniform(0.7, 1.3, (t, n))
        )
        fill = np.empty((t, n))
        start = 0
        for r in self._rounds(hour[:, 0]):
            level = np.minimum(100.0, self._fill + np.cumsum(rise[start : r + 1], axis=0))
            fill[start:r] = level[:-1]
            # The round empties bins more than half full, leaving a little behind.
            emptied = level[-1] > 50
            self._fill = level[-1].copy()
            self._fill[emptied] = self._emptied.uniform(0, 5, int(emptied.sum()))
            fill[r] = self._fill
            start = r + 1
        if start < t:
            fill[start:] = np.minimum(100.0, self._fill + np.cumsum(rise[start:], axis=0))
            self._fill = fill[-1].copy()
        measured = np.clip(fill + self._noise.normal(0, NOISE_PCT, (t, n)), 0, 100)
        temperature = (
            8 + 5 * np.sin(2 * np.pi * (hour - 9) / 24) + self._temperature.normal(0, 0.5, (t, n))
        )
        return {
            "fill_pct": np.round(measured, 1),
            "temperature_c": np.round(temperature, 1),
            "tilt": np.zeros((t, n), dtype=bool),
        }

    def _rounds(self, hour: np.ndarray) -> list[int]:
        """Indices of the first reading in each collection hour: when a round empties bins."""
        whole = hour.astype(int)
        previous = np.concatenate(
            [[self._last_hour if self._last_hour is not None else -1], whole[:-1]]
        )
        due = np.isin(whole, self.collection_hours) & (whole != previous)
        if len(whole):
            self._last_hour = int(whole[-1])
        return np.flatnonzero(due).tolist()

    def readings(self, when: datetime, interval_s: int) -> list[dict[str, Any]]:
        ts = int(when.timestamp())
        values = self.block(np.array([ts]), interval_s)
        return [
            {"device_id": d, "ts": ts, "fill_pct": f, "temperature_c": t, "tilt": False}
            for d, f, t in zip(
                self.device_ids,
                values["fill_pct"][0].tolist(),
                values["temperature_c"][0].tolist(),
                strict=True,
            )
        ]
