"""Plausible air quality readings for a set of devices at one moment, vectorised.

Shapes from DOMAIN.md: NO2 with morning and evening rush-hour peaks and lower
weekends; PM2.5 lognormal around 7 ug/m3 with PM10 about PM2.5 / 0.7;
temperature and humidity on a daily cycle; optical PM reading high when the
air is very humid.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np


def rush_hour_shape(hour: float) -> float:
    """0..~1: peaks near 08:00 and 18:00, low overnight."""
    return float(np.exp(-(((hour - 8.0) / 1.3) ** 2)) + 0.8 * np.exp(-(((hour - 18.0) / 1.6) ** 2)))


class AirQualityGenerator:
    def __init__(self, device_ids: Sequence[str], seed: int = 0) -> None:
        self.device_ids = list(device_ids)
        self._rng = np.random.default_rng(seed)
        n = len(self.device_ids)
        # Each site is its own place: a roadside monitor reads more NO2 than a park.
        self._no2_base = self._rng.uniform(12.0, 30.0, n)
        self._pm_base = self._rng.uniform(5.0, 9.0, n)

    def readings(self, when: datetime) -> list[dict[str, Any]]:
        """One reading per device, timestamped ``when`` (UTC)."""
        rng, n = self._rng, len(self.device_ids)
        hour = when.hour + when.minute / 60
        weekend = 0.75 if when.weekday() >= 5 else 1.0
        no2 = self._no2_base * (0.6 + 1.6 * rush_hour_shape(hour)) * weekend + rng.normal(0, 3, n)
        pm25 = rng.lognormal(np.log(self._pm_base), 0.25, n)
        temperature = 10 + 4 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 0.3, n)
        humidity = np.clip(
            78 - 14 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 4, n), 20, 100
        )
        pm25 = pm25 * np.where(humidity > 85, 1.3, 1.0)  # hygroscopic growth of particles
        pm10 = pm25 / rng.normal(0.7, 0.04, n)
        ts = when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return [
            {
                "device_id": device,
                "ts": ts,
                "pm25_ugm3": p25,
                "pm10_ugm3": p10,
                "no2_ugm3": n2,
                "temperature_c": t,
                "humidity_pct": h,
            }
            for device, p25, p10, n2, t, h in zip(
                self.device_ids,
                np.round(np.clip(pm25, 0, 999.9), 1).tolist(),
                np.round(np.clip(pm10, 0, 999.9), 1).tolist(),
                np.round(np.clip(no2, 0, 1000), 1).tolist(),
                np.round(temperature, 1).tolist(),
                np.round(humidity, 1).tolist(),
                strict=True,
            )
        ]
