"""The sensor kinds smartplace knows: one spec per kind, the only place a kind is described.

A spec says what ingest does with a kind's readings beyond validating them:
which windows it keeps, how a window is written, which fields the quality
checks watch, the columnar twin of its model's cross-field rule (for the
screen), and the extras only some kinds have (a site's air quality index, bin
collections). Ingest, the registry and the docs read these; a new kind is a
new spec (``tests/unit/ingest/test_fourth_kind.py`` builds one from a spec alone).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from smartplace.schemas.air_quality import POLLUTANT_FIELDS, AirQualityReading
from smartplace.schemas.bin import BinReading
from smartplace.schemas.footfall import MAX_PEOPLE_PER_S, FootfallReading
from smartplace.schemas.reading import Reading

BoolArray = npt.NDArray[np.bool_]
ColumnRule = Callable[[Mapping[str, npt.NDArray[np.float64]]], BoolArray]
"""A model's cross-field rule over columns (NaN = not measured): which rows it accepts."""

AggregateShape = Literal["measured", "counts", "fill"]
"""How a window is written: each field's mean, min, max and count (``measured``);
people in and out with the counted seconds (``counts``); a bin's fill (``fill``)."""

QUANTILE_MIN_WINDOW_S = 900
"""Windows at least this long keep p95s: of a minute's one to six readings it is the maximum."""


@dataclass(frozen=True)
class KindSpec:
    name: str
    """The topic's second level, the registry's kind and the ``kind`` tag."""
    model: type[Reading]
    """Validates each reading; its ``measurement`` names the raw series."""
    aggregate: AggregateShape = "measured"
    min_window_s: int = 0
    """Configured windows shorter than this are not kept for the kind."""
    checked_fields: tuple[str, ...] = ()
    """Fields the spike and flatline checks watch (what sensors measure, not counters)."""
    quantile_fields: tuple[str, ...] = ()
    """Fields whose p95 windows of QUANTILE_MIN_WINDOW_S and more keep."""
    screen_rule: ColumnRule | None = None
    """The model's cross-field validator over columns; a model with a validator and no
    rule here is never screened (every reading goes through pydantic)."""
    site_index: bool = False
    """An hourly air quality index per site is computed from its readings."""
    collections: bool = False
    """Collections (sharp falls in fill) are found, and windows count them (``collected``)."""
    track_order: bool = False
    """Windows keep the first and last value in event time (a bin's fill at the end)."""


def _has_a_pollutant(columns: Mapping[str, npt.NDArray[np.float64]]) -> BoolArray:
    some: BoolArray = np.zeros(len(columns[POLLUTANT_FIELDS[0]]), dtype=np.bool_)
    for name in POLLUTANT_FIELDS:
        some |= ~np.isnan(columns[name])
    return some


def _plausible_rate(columns: Mapping[str, npt.NDArray[np.float64]]) -> BoolArray:
    people = columns["count_in"] + columns["count_out"]
    plausible: BoolArray = people <= MAX_PEOPLE_PER_S * columns["interval_s"]
    return plausible


def every_row(columns: Mapping[str, npt.NDArray[np.float64]]) -> BoolArray:
    """For a model whose validator only explains what the field bounds already refuse."""
    return np.ones(len(next(iter(columns.values()))), dtype=np.bool_)


AIR_QUALITY = KindSpec(
    name="air_quality",
    model=AirQualityReading,
    checked_fields=POLLUTANT_FIELDS,
    quantile_fields=POLLUTANT_FIELDS,
    screen_rule=_has_a_pollutant,
    site_index=True,
)
FOOTFALL = KindSpec(
    name="footfall",
    model=FootfallReading,
    aggregate="counts",
    min_window_s=900,  # small counts over short windows identify people
    screen_rule=_plausible_rate,
)
BIN = KindSpec(
    name="bin",
    model=BinReading,
    aggregate="fill",
    min_window_s=900,  # a bin's fill changes slowly
    screen_rule=every_row,  # its validator only explains a missing fill_pct, required anyway
    collections=True,
    track_order=True,
)

KINDS: dict[str, KindSpec] = {spec.name: spec for spec in (AIR_QUALITY, FOOTFALL, BIN)}
"""Every kind by name, in the order the docs list them."""


def spec_of_model(model: type[Reading]) -> KindSpec | None:
    """The kind whose readings a model validates; None for device status (every kind's)."""
    return next((spec for spec in KINDS.values() if spec.model is model), None)
