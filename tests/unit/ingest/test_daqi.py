"""The air quality index at every band boundary of DEFRA's table (DOMAIN.md section 1.2)."""

from __future__ import annotations

import numpy as np
import pytest

from smartplace.ingest.windows.daqi import DAQI_UPPER_BOUNDS, daqi_band, daqi_index, overall

# The table, written out as DOMAIN.md prints it: (index, lowest, highest) per pollutant.
TABLE = {
    "no2": [
        (1, 0, 67),
        (2, 68, 134),
        (3, 135, 200),
        (4, 201, 267),
        (5, 268, 334),
        (6, 335, 400),
        (7, 401, 467),
        (8, 468, 534),
        (9, 535, 600),
        (10, 601, None),
    ],
    "o3": [
        (1, 0, 33),
        (2, 34, 66),
        (3, 67, 100),
        (4, 101, 120),
        (5, 121, 140),
        (6, 141, 160),
        (7, 161, 187),
        (8, 188, 213),
        (9, 214, 240),
        (10, 241, None),
    ],
    "so2": [
        (1, 0, 88),
        (2, 89, 177),
        (3, 178, 266),
        (4, 267, 354),
        (5, 355, 443),
        (6, 444, 532),
        (7, 533, 710),
        (8, 711, 887),
        (9, 888, 1064),
        (10, 1065, None),
    ],
    "pm25": [
        (1, 0, 11),
        (2, 12, 23),
        (3, 24, 35),
        (4, 36, 41),
        (5, 42, 47),
        (6, 48, 53),
        (7, 54, 58),
        (8, 59, 64),
        (9, 65, 70),
        (10, 71, None),
    ],
    "pm10": [
        (1, 0, 16),
        (2, 17, 33),
        (3, 34, 50),
        (4, 51, 58),
        (5, 59, 66),
        (6, 67, 75),
        (7, 76, 83),
        (8, 84, 91),
        (9, 92, 100),
        (10, 101, None),
    ],
}


@pytest.mark.parametrize("pollutant", sorted(TABLE))
def test_every_band_boundary(pollutant: str) -> None:
    for index, lowest, highest in TABLE[pollutant]:
        edges = [lowest] + ([highest] if highest is not None else [lowest + 1000])
        got = daqi_index(pollutant, np.array(edges, dtype=float)).tolist()  # type: ignore[arg-type]
        assert got == [index] * len(edges), (pollutant, index, edges)


@pytest.mark.parametrize("pollutant", sorted(TABLE))
def test_the_mean_is_rounded_half_up_before_the_lookup(pollutant: str) -> None:
    first_bound = DAQI_UPPER_BOUNDS[pollutant][0]  # type: ignore[index]
    got = daqi_index(pollutant, np.array([first_bound + 0.49, first_bound + 0.5]))  # type: ignore[arg-type]
    assert got.tolist() == [1, 2]


def test_no_mean_is_no_index_and_small_negatives_are_index_1() -> None:
    assert daqi_index("no2", np.array([np.nan, -3.0, 0.0])).tolist() == [0, 1, 1]


def test_bands() -> None:
    assert daqi_band(np.arange(11, dtype=np.int8)).tolist() == [
        "",
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
    ]


def test_overall_is_the_highest_index_and_names_its_pollutant() -> None:
    indices = {
        "pm25": daqi_index("pm25", np.array([40.0, 5.0, np.nan])),  # 4, 1, none
        "no2": daqi_index("no2", np.array([250.0, 10.0, np.nan])),  # 4, 1, none
        "pm10": daqi_index("pm10", np.array([10.0, 120.0, np.nan])),  # 1, 10, none
    }
    highest, which = overall(indices)  # type: ignore[arg-type]
    assert highest.tolist() == [4, 10, 0]
    assert which.tolist() == ["pm25", "pm10", ""]  # a tie goes to the first named
