"""The public datasets: which aggregates, at which window, under which stable column names.

Column names and order are a promise to every portal that harvests them:
add columns at the end, never rename or reorder (a breaking change is a new
dataset). Rows are one per site and period; times are ISO 8601 UTC.
Footfall is never published below 15 minutes, and nothing here names a
person: sites and device kinds only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from smartplace.storage import SITE_DAQI, aggregate_field, aggregate_measurement

LICENCE_URL = "http://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"
"""The OGL's URI as CKAN's licence list (and so ckanext-dcat, which matches it exactly) has it."""
LICENCE_NAME = "Open Government Licence v3.0"
ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0."
    " © Stockport Metropolitan Borough Council"
)
PUBLISHER = "Stockport Metropolitan Borough Council"

ColumnType = Literal["number", "integer", "string", "boolean"]
COMPLETE_COVERAGE = 0.95
"""A row is complete when its period has ended and its coverage is at least this share."""


@dataclass(frozen=True, slots=True)
class Coverage:
    """How a dataset with no seconds-counted field knows how whole a period is: the share of
    its finer windows in which each device at the site sent a reading, averaged over the
    devices. A finer window holds a point only if a reading arrived in it, so a monitor
    that sent one reading in an hour fills one quarter of it, whatever its usual rate
    (which must be no slower than the finer window for a whole period to count as whole)."""

    measurement: str
    period_s: int
    field: str
    """A field every point of ``measurement`` has."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    unit: str
    """A UCUM code ("" for text and flags)."""
    description: str
    select: str
    """The InfluxQL aggregate that gives it, per site and period ("" when it is worked out
    from the other columns: see store.shape_row)."""
    people: bool = False
    """A count of people: small values are suppressed (FeedsSettings.footfall_min_count)."""


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    title: str
    description: str
    measurement: str
    period_s: int
    columns: tuple[Column, ...]
    default_days: int
    """The range served when a request gives none."""
    coverage: Coverage | None = None
    """Where its ``coverage`` column comes from, when not from its own points."""
    sparse: bool = False
    """Its points need not carry the first column's field (a gas-only monitor sends no PM):
    its rows are counted as the periods holding any of its fields (dearer to count)."""

    @property
    def interval(self) -> str:
        """The period as an ISO 8601 duration (PT15M, PT1H, P1D)."""
        if self.period_s % 86_400 == 0:
            return f"P{self.period_s // 86_400}D"
        if self.period_s % 3_600 == 0:
            return f"PT{self.period_s // 3_600}H"
        return f"PT{self.period_s // 60}M"

    @property
    def accrual(self) -> str:
        """DCAT's dct:accrualPeriodicity, from the EU frequency vocabulary."""
        return {900: "UPDATE_CONT", 3600: "HOURLY", 86_400: "DAILY"}[self.period_s]

    @property
    def column_names(self) -> list[str]:
        return ["site", "period_start", "period_end", *(c.name for c in self.columns)]


def _pollutants(window: str) -> tuple[Column, ...]:
    def mean(name: str, field: str, unit: str, what: str) -> Column:
        return Column(
            name,
            "number",
            unit,
            f"{what}: the site's mean over the period (each monitor's {window} mean, averaged)",
            f'mean("{aggregate_field(field, "mean")}")',
        )

    return (
        mean("pm2_5_ugm3", "pm25_ugm3", "ug/m3", "PM2.5"),
        mean("pm10_ugm3", "pm10_ugm3", "ug/m3", "PM10"),
        mean("no2_ugm3", "no2_ugm3", "ug/m3", "Nitrogen dioxide"),
        mean("temperature_c", "temperature_c", "Cel", "Air temperature"),
        mean("humidity_pct", "humidity_pct", "%", "Relative humidity"),
        Column(
            "readings",
            "integer",
            "1",
            "PM2.5 readings behind the means (low-cost sensors: indicative, not reference-grade)",
            f'sum("{aggregate_field("pm25_ugm3", "count")}")',
        ),
        _complete(f"it has ended and coverage is at least {COMPLETE_COVERAGE}"),
        _window_coverage("15-minute windows", "monitors"),
    )


def _window_coverage(windows: str, devices: str) -> Column:
    return Column(
        "coverage",
        "number",
        "1",
        f"Share of the period's {windows} in which the site's {devices} sent a reading"
        " (their mean; 1 is all of them)",
        "",
    )


def _complete(how: str) -> Column:
    return Column("complete", "boolean", "", f"Whether the period is whole: {how}", "")


def _footfall() -> tuple[Column, ...]:
    return (
        Column(
            "count_in",
            "integer",
            "{people}",
            "People counted going in (empty if fewer than the privacy floor)",
            'sum("count_in_sum")',
            people=True,
        ),
        Column(
            "count_out",
            "integer",
            "{people}",
            "People counted going out (empty if fewer than the privacy floor)",
            'sum("count_out_sum")',
            people=True,
        ),
        Column(
            "coverage",
            "number",
            "1",
            "Share of the period the site's counters counted (their mean; 1 is all of it)",
            'mean("interval_s_sum")',
        ),
        _complete(f"it has ended and coverage is at least {COMPLETE_COVERAGE}"),
    )


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "air-quality-hourly",
            "Air quality, hourly, by site",
            "Hourly mean PM2.5, PM10, NO2, temperature and humidity at each monitored site.",
            aggregate_measurement("air_quality", 3600),
            3_600,
            _pollutants("hourly"),
            7,
            Coverage(
                aggregate_measurement("air_quality", 900),
                900,
                aggregate_field("pm25_ugm3", "count"),
            ),
            sparse=True,
        ),
        Dataset(
            "air-quality-daily",
            "Air quality, daily, by site",
            "Daily mean PM2.5, PM10, NO2, temperature and humidity at each monitored site.",
            aggregate_measurement("air_quality", 86_400),
            86_400,
            _pollutants("daily"),
            90,
            Coverage(
                aggregate_measurement("air_quality", 900),
                900,
                aggregate_field("pm25_ugm3", "count"),
            ),
            sparse=True,
        ),
        Dataset(
            "air-quality-index-hourly",
            "Daily Air Quality Index, hourly, by site",
            "The UK Daily Air Quality Index (1-10) and its band at each site, each hour.",
            SITE_DAQI,
            3_600,
            (
                Column(
                    "daqi_index",
                    "integer",
                    "1",
                    "UK DAQI, 1 (low) to 10 (very high)",
                    'last("index")',
                ),
                Column(
                    "daqi_band", "string", "", "Low, Moderate, High or Very High", 'last("band")'
                ),
                Column(
                    "pollutant",
                    "string",
                    "",
                    "The pollutant that set the index",
                    'last("pollutant")',
                ),
                _complete("it has ended"),
            ),
            7,
        ),
        Dataset(
            "footfall-15min",
            "Footfall, every 15 minutes, by site",
            "People counted in and out at each site, per 15 minutes (never finer).",
            aggregate_measurement("footfall", 900),
            900,
            _footfall(),
            7,
        ),
        Dataset(
            "footfall-hourly",
            "Footfall, hourly, by site",
            "People counted in and out at each site, per hour.",
            aggregate_measurement("footfall", 3600),
            3_600,
            _footfall(),
            7,
        ),
        Dataset(
            "bins-daily",
            "Litter bins, daily, by site",
            "The fullest bin's highest fill and the collections made at each site, per day.",
            aggregate_measurement("bin", 86_400),
            86_400,
            (
                Column(
                    "fill_pct_max",
                    "number",
                    "%",
                    "Highest fill of any bin at the site",
                    'max("fill_pct_max")',
                ),
                Column("collections", "integer", "1", "Bins emptied", 'sum("collections")'),
                _complete(f"it has ended and coverage is at least {COMPLETE_COVERAGE}"),
                _window_coverage("hours", "bins"),
            ),
            90,
            Coverage(aggregate_measurement("bin", 3600), 3600, "fill_pct_max"),
        ),
    )
}
