"""Plausible air quality for a set of devices over a grid of times, vectorised.

Shapes from DOMAIN.md: NO2 with morning and evening rush-hour peaks, lower at
weekends and higher at the roadside; PM2.5 lognormal around 7 ug/m3 with slow,
town-wide weather-like swings, and PM10 about PM2.5 / 0.7; temperature and
humidity on a daily cycle; optical PM reading high when the air is very humid.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from smartplace.simulator.streams import smooth_swing, stream

FIELDS = ("pm25_ugm3", "pm10_ugm3", "no2_ugm3", "temperature_c", "humidity_pct")


def rush_hour_shape(hour: np.ndarray | float) -> np.ndarray:
    """0..~1: peaks near 08:00 and 18:00, low overnight."""
    shape: np.ndarray = np.exp(-(((hour - 8.0) / 1.3) ** 2)) + 0.8 * np.exp(
        -(((hour - 18.0) / 1.6) ** 2)
    )
    return shape


def hours_and_weekdays(ts_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day (fractional, UTC) and weekday (Monday 0) of each time, as (T, 1) columns."""
    hour = (ts_s % 86_400) / 3_600.0
    weekday = (ts_s // 86_400 + 3) % 7  # 1970-01-01 was a Thursday
    return hour[:, None], weekday[:, None]


class AirQualityGenerator:
    fields = FIELDS

    def __init__(
        self, device_ids: Sequence[str], seed: int = 0, roadside: Sequence[bool] | None = None
    ) -> None:
        self.device_ids = list(device_ids)
        self.seed = seed
        n = len(self.device_ids)
        sites = stream(seed, "air_quality", "sites", *self.device_ids[:1])
        near_road = np.asarray(roadside if roadside is not None else [False] * n, dtype=bool)
        # Each site is its own place: a roadside monitor reads more NO2 than a park.
        self._no2_base = sites.uniform(12.0, 30.0, n) * np.where(near_road, 1.6, 1.0)
        self._pm_base = sites.uniform(5.0, 9.0, n)
        self._noise = {
            name: stream(seed, "air_quality", name) for name in ("no2", "pm", "ratio", "t", "rh")
        }

    def block(self, ts_s: np.ndarray) -> dict[str, np.ndarray]:
        """Each field as a (times, devices) array, for readings at ``ts_s`` (epoch seconds)."""
        shape = (len(ts_s), len(self.device_ids))
        hour, weekday = hours_and_weekdays(ts_s)
        weekend = np.where(weekday >= 5, 0.75, 1.0)
        noise = self._noise
        no2 = self._no2_base * (0.6 + 1.6 * rush_hour_shape(hour)) * weekend + noise["no2"].normal(
            0, 3, shape
        )
        weather = smooth_swing(ts_s, self.seed, "pm", (31.0, 53.0, 97.0))[:, None]
        pm25 = self._pm_base * np.exp(0.5 * weather) * noise["pm"].lognormal(0, 0.2, shape)
        daily = np.sin(2 * np.pi * (hour - 9) / 24)
        mild = smooth_swing(ts_s, self.seed, "temperature", (71.0, 160.0))[:, None]
        temperature = 10 + 4 * daily + 3 * mild + noise["t"].normal(0, 0.3, shape)
        humidity = np.clip(78 - 14 * daily - 6 * mild + noise["rh"].normal(0, 4, shape), 20, 100)
        pm25 = pm25 * np.where(humidity > 85, 1.3, 1.0)  # hygroscopic growth of particles
        pm10 = pm25 / noise["ratio"].normal(0.7, 0.04, shape)
        return {
            "pm25_ugm3": np.round(np.clip(pm25, 0, 999.9), 1),
            "pm10_ugm3": np.round(np.clip(pm10, 0, 999.9), 1),
            "no2_ugm3": np.round(np.clip(no2, 0, 1000), 1),
            "temperature_c": np.round(temperature, 1),
            "humidity_pct": np.round(humidity, 1),
        }

    def readings(self, when: datetime) -> list[dict[str, Any]]:
        """One reading per device, timestamped ``when`` (UTC), as native payload bodies."""
        values = self.block(np.array([int(when.timestamp())]))
        ts = when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        columns = [values[name][0].tolist() for name in FIELDS]
        return [
            {"device_id": device, "ts": ts, **dict(zip(FIELDS, row, strict=True))}
            for device, *row in zip(self.device_ids, *columns, strict=True)
        ]
