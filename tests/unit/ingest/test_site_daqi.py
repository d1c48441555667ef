"""The hourly air quality index per site, on readings whose means are worked out by hand."""

from __future__ import annotations

import numpy as np

from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.windows.site_daqi import SiteDaqi

H = 3_600 * 1_000_000_000
FIELDS = ("pm25_ugm3", "pm10_ugm3", "no2_ugm3", "o3_ugm3")
NAN = float("nan")


def batch(
    rows: list[tuple[str, str, int, float, float, float, float]],
) -> ReadingColumns:
    """(device, site, ns, pm25, pm10, no2, o3) rows."""
    return ReadingColumns(
        measurement="air_quality",
        kind="air_quality",
        fields=FIELDS,
        field_types=("float",) * 4,
        device_ids=np.array([r[0] for r in rows], dtype=np.str_),
        ts_ns=np.array([r[2] for r in rows], dtype=np.int64),
        values=np.array([r[3:] for r in rows], dtype=np.float64),
        qc_flags=np.zeros(len(rows), dtype=np.uint32),
        sites=np.array([r[1] for r in rows], dtype=np.str_),
    )


def test_an_hour_of_no2_from_two_monitors_gives_the_hourly_index_once_the_hour_is_over() -> None:
    daqi = SiteDaqi()
    # Two monitors at one site: (240 + 260) / 2 = 250 -> NO2 index 4 (201-267), Moderate.
    early = daqi.add(
        batch(
            [
                ("aq-1", "a6", 10 * H + 60, NAN, NAN, 240.0, NAN),
                ("aq-2", "a6", 10 * H + 120, NAN, NAN, 260.0, NAN),
            ]
        )
    )
    assert early == []  # the hour is not over
    done = daqi.add(batch([("aq-1", "a6", 11 * H + 1, NAN, NAN, 20.0, NAN)]))
    assert done == [
        f'daqi_1h,site=a6 no2_1h_ugm3=250.0,no2_index=4i,index=4i,band="Moderate",pollutant="no2",pm_only=false {10 * H}'
    ]


def test_pm_needs_18_of_24_hours_and_takes_their_running_mean() -> None:
    daqi = SiteDaqi()
    rows = [("aq-1", "merseyway", h * H, 36.0 + (h % 2) * 10, 50.0, NAN, NAN) for h in range(17)]
    lines = daqi.add(batch([*rows, ("aq-1", "merseyway", 17 * H, NAN, NAN, NAN, NAN)]))
    assert not any("pm25_24h" in line for line in lines)  # 17 hours: not enough
    lines = daqi.add(
        batch(
            [
                ("aq-1", "merseyway", 17 * H, 41.0, 50.0, NAN, NAN),
                ("aq-1", "merseyway", 18 * H, NAN, NAN, NAN, NAN),
            ]
        )
    )
    # 18 hourly means: nine of 36, eight of 46, one of 41 -> (324 + 368 + 41) / 18 = 40.722 -> 41 -> index 4
    [line] = [line for line in lines if line.endswith(f" {17 * H}")]
    assert "pm25_24h_ugm3=40.722,pm25_index=4i" in line
    assert "pm10_24h_ugm3=50.0,pm10_index=3i" in line  # 50 -> index 3 (34-50)
    assert 'index=4i,band="Moderate",pollutant="pm25",pm_only=true' in line


def test_a_late_reading_re_emits_its_hour() -> None:
    daqi = SiteDaqi()
    daqi.add(
        batch(
            [
                ("aq-1", "a6", 5 * H, NAN, NAN, 100.0, NAN),
                ("aq-1", "a6", 6 * H, NAN, NAN, 10.0, NAN),
            ]
        )
    )
    late = daqi.add(batch([("aq-1", "a6", 5 * H + 30, NAN, NAN, 700.0, NAN)]))
    # the hour now averages (100 + 700) / 2 = 400 -> index 6 (335-400)
    assert late == [
        f'daqi_1h,site=a6 no2_1h_ugm3=400.0,no2_index=6i,index=6i,band="Moderate",pollutant="no2",pm_only=false {5 * H}'
    ]


def test_devices_without_a_site_have_no_site_index() -> None:
    daqi = SiteDaqi()
    assert (
        daqi.add(
            batch(
                [
                    ("aq-1", "", 0, 10.0, 20.0, 30.0, 40.0),
                    ("aq-1", "", 2 * H, 10.0, 20.0, 30.0, 40.0),
                ]
            )
        )
        == []
    )
    assert daqi.flush() == []
