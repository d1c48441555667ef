"""Device status: batteries draining slowly, radio links that come and go a little."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smartplace.simulator.streams import stream

FIELDS = ("battery_pct", "rssi_dbm", "snr_db")
EPOCH_S = 1_767_225_600
"""2026-01-01: the simulated batteries were fitted then (a fixed origin keeps runs alike)."""


class DeviceStatusGenerator:
    fields = FIELDS

    def __init__(self, device_ids: Sequence[str], seed: int = 0) -> None:
        self.device_ids = list(device_ids)
        n = len(self.device_ids)
        devices = stream(seed, "device_status", "devices", *self.device_ids[:1])
        self._battery_start = devices.uniform(85, 100, n)
        self._drain_per_day = devices.uniform(0.02, 0.15, n)
        self._rssi = devices.uniform(-110, -65, n)
        self._rssi_noise = stream(seed, "device_status", "rssi")
        self._snr_noise = stream(seed, "device_status", "snr")

    def block(self, ts_s: np.ndarray) -> dict[str, np.ndarray]:
        shape = (len(ts_s), len(self.device_ids))
        days = ((ts_s - EPOCH_S) / 86_400.0)[:, None]
        battery = np.clip(self._battery_start - self._drain_per_day * days, 0, 100)
        rssi = np.clip(self._rssi + self._rssi_noise.normal(0, 3, shape), -140, -30)
        snr = np.clip((rssi + 120) / 5 + self._snr_noise.normal(0, 1.5, shape), -20, 15)
        return {
            "battery_pct": np.round(battery, 1),
            "rssi_dbm": np.round(rssi, 0),
            "snr_db": np.round(snr, 1),
        }
