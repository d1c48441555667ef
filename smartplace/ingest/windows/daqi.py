"""The UK Daily Air Quality Index (DEFRA, 2012): a 1-10 index per pollutant, and overall.

Each pollutant's mean over its own averaging period (hourly NO2, running 8 h
O3, 15 min SO2, running 24 h PM2.5 and PM10) is rounded to a whole ug/m3 and
looked up in DEFRA's table; the overall index is the highest, and says which
pollutant set it. Pure numpy: arrays of concentrations in, arrays of indices out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt

from smartplace.ingest.decode.columns import FloatArray

Pollutant = Literal["no2", "o3", "so2", "pm25", "pm10"]

# The highest concentration (ug/m3, whole numbers) of indices 1 to 9; above the last is 10.
# DOMAIN.md section 1.2: DEFRA's table, as in its 2013 implementation report.
DAQI_UPPER_BOUNDS: Mapping[Pollutant, tuple[int, ...]] = {
    "no2": (67, 134, 200, 267, 334, 400, 467, 534, 600),
    "o3": (33, 66, 100, 120, 140, 160, 187, 213, 240),
    "so2": (88, 177, 266, 354, 443, 532, 710, 887, 1064),
    "pm25": (11, 23, 35, 41, 47, 53, 58, 64, 70),
    "pm10": (16, 33, 50, 58, 66, 75, 83, 91, 100),
}
AVERAGING_HOURS: Mapping[Pollutant, float] = {
    "no2": 1,
    "o3": 8,
    "so2": 0.25,
    "pm25": 24,
    "pm10": 24,
}
"""Over how long each pollutant's mean is taken (running means for O3 and PM)."""
BANDS = (
    "Low",
    "Low",
    "Low",
    "Moderate",
    "Moderate",
    "Moderate",
    "High",
    "High",
    "High",
    "Very High",
)

IndexArray = npt.NDArray[np.int8]


def daqi_index(pollutant: Pollutant, mean_ugm3: FloatArray) -> IndexArray:
    """Index 1-10 per mean concentration; 0 where there is no mean (NaN).

    Means are rounded half up to a whole ug/m3 before the lookup, so 11.49
    PM2.5 is index 1 and 11.5 is index 2.
    """
    rounded = np.floor(np.asarray(mean_ugm3, dtype=np.float64) + 0.5)
    bounds = np.asarray(DAQI_UPPER_BOUNDS[pollutant], dtype=np.float64)
    index = np.searchsorted(bounds, rounded, side="left") + 1
    return np.where(np.isnan(rounded), 0, index).astype(np.int8)


def daqi_band(index: IndexArray) -> npt.NDArray[np.str_]:
    """Low (1-3), Moderate (4-6), High (7-9) or Very High (10); '' where there is no index."""
    labels = np.array(("", *BANDS))
    return np.asarray(labels[np.asarray(index, dtype=np.int64)], dtype=np.str_)


def overall(indices: Mapping[Pollutant, IndexArray]) -> tuple[IndexArray, npt.NDArray[np.str_]]:
    """The highest index across pollutants and which pollutant it was ('' where none had a mean)."""
    names = list(indices)
    stacked = np.stack([indices[name] for name in names])
    highest = stacked.max(axis=0).astype(np.int8)
    which = np.array(names, dtype=np.str_)[stacked.argmax(axis=0)]
    return highest, np.where(highest > 0, which, "")
