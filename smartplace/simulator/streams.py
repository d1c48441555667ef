"""Random streams that give the same numbers however a run is cut into blocks.

Each field of each generator draws from its own stream, in (time, device)
order, so a fortnight generated in one block, in a day's blocks or one
instant at a time (real-time mode) is the same fortnight.
"""

from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *names: str) -> np.random.Generator:
    """A generator of its own for (seed, names): e.g. stream(0, 'air_quality', 'no2')."""
    keys = [zlib.crc32(name.encode()) for name in names]
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def smooth_swing(
    ts_s: np.ndarray, seed: int, name: str, periods_h: tuple[float, ...]
) -> np.ndarray:
    """A slow, weather-like swing in [-1, 1]: a sum of sines of the given periods with
    random phases. A function of time alone, so it needs no state between blocks."""
    phases = stream(seed, "swing", name).uniform(0, 2 * np.pi, len(periods_h))
    hours = ts_s / 3600.0
    total = sum(
        np.sin(2 * np.pi * hours / period + phase)
        for period, phase in zip(periods_h, phases, strict=True)
    )
    swing: np.ndarray = np.asarray(total) / len(periods_h)
    return swing
