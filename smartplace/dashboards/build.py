"""The six dashboards operations staff use, built with grafana-foundation-sdk.

Every query is raw InfluxQL against the measurements ingest writes (see the
README's Storage section); ``$timeFilter``, ``$__interval`` and the template
variables are Grafana's, expanded when a panel runs. ``smartplace dashboards
build`` writes them to ``dashboards/*.json``; a test fails when the committed
JSON differs from what this code builds.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import bargauge, geomap, heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders import geomap as geomap_builders
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig

from smartplace.dashboards.influxql import DATASOURCE, InfluxQL

TOWN_CENTRE = (53.4106, -2.1575)
"""Stockport town centre (Merseyway), where the overview map opens."""
FOLDER = "smartplace"
FOLDER_UID = "smartplace"
"""The folder's uid, the same for file provisioning and 'dashboards push'."""
SITE = '"site" =~ /^$site$/'
DEVICE = '"device_id" =~ /^$device$/'

# UK DAQI bands (DOMAIN.md): 1-3 Low, 4-6 Moderate, 7-9 High, 10 Very High.
DAQI_STEPS = [(None, "green"), (4, "yellow"), (7, "red"), (10, "purple")]
# Each pollutant's DAQI band edges, in ug/m3 (PM: 24 h means; NO2: hourly means).
POLLUTANT_STEPS = {
    "pm25_ugm3": [(None, "green"), (36, "yellow"), (54, "red"), (71, "purple")],
    "pm10_ugm3": [(None, "green"), (51, "yellow"), (76, "red"), (101, "purple")],
    "no2_ugm3": [(None, "green"), (201, "yellow"), (401, "red"), (601, "purple")],
}
DAQI_BANDS = [(1, 3, "Low"), (4, 6, "Moderate"), (7, 9, "High"), (10, 10, "Very High")]
"""DEFRA's band words (DOMAIN.md), shown instead of the index; the bar's length is the index."""


def daqi_words() -> list[model.ValueMapping]:
    return [
        model.RangeMap(
            options=model.DashboardRangeMapOptions(
                from_val=low,
                to=high,
                result=model.ValueMappingResult(text=word),
            )
        )
        for low, high, word in DAQI_BANDS
    ]


FILL_STEPS = [(None, "green"), (60, "yellow"), (80, "red")]


def thresholds(steps: Sequence[tuple[float | None, str]]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def threshold_style(mode: common.GraphThresholdsStyleMode) -> GraphThresholdsStyleConfig:
    return GraphThresholdsStyleConfig().mode(mode)


def tag_variable(name: str, label: str, measurement: str, key: str) -> QueryVariable:
    """A multi-value variable filled by SHOW TAG VALUES (with All), refreshed on time change."""
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(f'SHOW TAG VALUES FROM {measurement} WITH KEY = "{key}"')
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def _dashboard(uid: str, title: str, description: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["smartplace"])
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("browser")
    )


MIN_INTERVAL = "1m"
"""The least ``$__interval`` any panel asks for: devices report every minute or less often, so
finer buckets only cost (a day at 1 s would be 86 400 buckets per device)."""


def series(title: str, unit: str, *queries: InfluxQL, width: int = 12) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(width)
        .height(8)
        .interval(MIN_INTERVAL)
    )
    for query in queries:
        panel = panel.with_target(query)
    return panel


def headline(
    title: str,
    query: str,
    unit: str = "short",
    steps: Sequence[tuple[float | None, str]] | None = None,
) -> stat.Panel:
    """One big number across the top of the overview."""
    panel = (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .with_target(InfluxQL(query))
        .span(6)
        .height(5)
    )
    return panel.thresholds(thresholds(steps)) if steps else panel


def overview() -> Dashboard:
    return (
        _dashboard(
            "smartplace-overview",
            "Town overview",
            "Where the devices are and how the town is doing now.",
        )
        .with_row(Row("Now"))
        .with_panel(
            headline(
                "Worst air quality index now, any site",
                # Each site's latest hour, then the worst of those: now, not the day's maximum.
                'SELECT max("index") FROM (SELECT last("index") AS "index" FROM "agg"."daqi_1h"'
                ' WHERE $timeFilter GROUP BY "site")',
                steps=DAQI_STEPS,
            )
        )
        .with_panel(
            headline(
                "People in, whole town",
                'SELECT sum("count_in_sum") FROM "agg"."footfall_15m" WHERE $timeFilter',
            )
        )
        .with_panel(
            headline(
                "Fullest bin",
                'SELECT max("fill") FROM (SELECT last("fill_pct_last") AS "fill" FROM'
                ' "agg"."bin_15m" WHERE $timeFilter GROUP BY "device_id")',
                unit="percent",
                steps=FILL_STEPS,
            )
        )
        .with_panel(
            headline(
                "Readings taken in",
                'SELECT sum("accepted") FROM "raw"."delivery_ledger" WHERE $timeFilter',
            )
        )
        .with_row(Row("Map"))
        .with_panel(
            geomap.Panel()
            .title("Devices, by their latest state")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    'SELECT last("latitude") AS "latitude", last("longitude") AS "longitude",'
                    ' last("status") AS "status" FROM "raw"."device_info" GROUP BY'
                    ' "device_id", "kind", "site"'
                ).table()
            )
            .with_target(
                InfluxQL(
                    'SELECT last("fill_pct") AS "state" FROM "raw"."bin" WHERE $timeFilter'
                    ' GROUP BY "device_id"',
                    "B",
                ).table()
            )
            .with_target(
                InfluxQL(
                    'SELECT last("no2_ugm3") AS "state" FROM "raw"."air_quality" WHERE'
                    ' $timeFilter GROUP BY "device_id"',
                    "C",
                ).table()
            )
            .with_target(
                InfluxQL(
                    'SELECT sum("count_in") AS "state" FROM "raw"."footfall" WHERE'
                    ' time > now() - 1h GROUP BY "device_id"',
                    "D",
                ).table()
            )
            .with_transformation(
                DataTransformerConfig(
                    id_val="joinByField", options={"byField": "device_id", "mode": "outer"}
                )
            )
            .view(
                geomap_builders.MapViewConfig()
                .id("coords")
                .lat(TOWN_CENTRE[0])  # type: ignore[arg-type]  # the SDK types degrees as int
                .lon(TOWN_CENTRE[1])  # type: ignore[arg-type]
                .zoom(14)
            )
            .span(24)
            .height(14)
        )
    )


def air_quality() -> Dashboard:
    board = (
        _dashboard(
            "smartplace-air-quality",
            "Air quality",
            "The UK Daily Air Quality Index per site, and each pollutant raw beside hourly.",
        )
        .with_variable(tag_variable("site", "Site", '"agg"."daqi_1h"', "site"))
        .with_variable(tag_variable("device", "Device", '"raw"."air_quality"', "device_id"))
        .with_row(Row("Air quality index"))
        .with_panel(
            bargauge.Panel()
            .title("Index now, per site")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    f'SELECT last("index") FROM "agg"."daqi_1h" WHERE $timeFilter AND {SITE}'
                    ' GROUP BY "site"'
                ).alias("$tag_site")
            )
            .thresholds(thresholds(DAQI_STEPS))
            .mappings(daqi_words())
            .min(1)
            .max(10)
            .span(8)
            .height(8)
        )
        .with_panel(
            series(
                "Index over the last 7 days",
                "short",
                InfluxQL(
                    f'SELECT max("index") FROM "agg"."daqi_1h" WHERE $timeFilter AND {SITE}'
                    ' GROUP BY time(1h), "site"'
                ).alias("$tag_site"),
                width=16,
            )
            .time_from("7d")
            .thresholds(thresholds(DAQI_STEPS))
            .thresholds_style(threshold_style(common.GraphThresholdsStyleMode.AREA))
        )
        .with_row(Row("Pollutants: raw readings and hourly means"))
    )
    for field, title in (
        ("pm25_ugm3", "PM2.5"),
        ("pm10_ugm3", "PM10"),
        ("no2_ugm3", "NO2"),
    ):
        board = board.with_panel(
            series(
                title,
                "conμgm3",
                InfluxQL(
                    f'SELECT mean("{field}") FROM "raw"."air_quality" WHERE $timeFilter AND {DEVICE}'
                    ' GROUP BY time($__interval), "device_id"'
                ).alias("$tag_device_id raw"),
                InfluxQL(
                    f'SELECT mean("{field}_mean") FROM "agg"."air_quality_1h" WHERE $timeFilter'
                    f' AND {DEVICE} GROUP BY time(1h), "device_id"',
                    "B",
                ).alias("$tag_device_id hourly"),
            )
            .thresholds(thresholds(POLLUTANT_STEPS[field]))
            .thresholds_style(threshold_style(common.GraphThresholdsStyleMode.LINE))
        )
    return board.with_panel(
        series(
            "Temperature and humidity",
            "short",
            InfluxQL(
                'SELECT mean("temperature_c") AS "temperature (°C)", mean("humidity_pct") AS'
                f' "humidity (%)" FROM "raw"."air_quality" WHERE $timeFilter AND {DEVICE}'
                " GROUP BY time($__interval)"
            ),
        )
    )


def footfall() -> Dashboard:
    hourly = (
        f'SELECT sum("count_in_sum") FROM "agg"."footfall_1h" WHERE $timeFilter AND {SITE}'
        ' GROUP BY time(1h), "site"'
    )
    return (
        _dashboard(
            "smartplace-footfall",
            "Footfall",
            "People counted in, per site and hour (never below 15 minutes: small counts identify people).",
        )
        .with_variable(tag_variable("site", "Site", '"agg"."footfall_1h"', "site"))
        .with_panel(
            series(
                "People in, per site and hour",
                "short",
                InfluxQL(hourly).alias("$tag_site"),
                width=24,
            )
        )
        .with_panel(
            heatmap.Panel()
            .title("Hour by day")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(hourly).alias("$tag_site"))
            .time_from("7d")
            .span(24)
            .height(9)
        )
        .with_panel(
            series("This week", "short", InfluxQL(hourly).alias("$tag_site")).time_from("7d")
        )
        .with_panel(
            series("The week before", "short", InfluxQL(hourly).alias("$tag_site"))
            .time_from("7d")
            .time_shift("7d")
        )
        .with_panel(
            series(
                "In and out, whole town (15 min)",
                "short",
                InfluxQL(
                    'SELECT sum("count_in_sum") AS "in", sum("count_out_sum") AS "out" FROM'
                    f' "agg"."footfall_15m" WHERE $timeFilter AND {SITE} GROUP BY time(15m)'
                ),
                width=24,
            )
        )
    )


def bins() -> Dashboard:
    latest = (
        'SELECT last("fill_pct_last") AS "fill" FROM "agg"."bin_15m" WHERE $timeFilter'
        f' AND {SITE} GROUP BY "device_id", "site"'
    )
    return (
        _dashboard("smartplace-bins", "Bins", "How full each bin is, which to empty now, and when.")
        .with_variable(tag_variable("site", "Site", '"agg"."bin_15m"', "site"))
        .with_panel(
            bargauge.Panel()
            .title("Fill by bin")
            .datasource(DATASOURCE)
            .unit("percent")
            .with_target(InfluxQL(latest).alias("$tag_device_id"))
            .thresholds(thresholds(FILL_STEPS))
            .min(0)
            .max(100)
            .span(12)
            .height(10)
        )
        .with_panel(
            table.Panel()
            .title("To collect now (over 80 %)")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(latest).table())
            .with_transformation(
                DataTransformerConfig(
                    id_val="filterByValue",
                    options={
                        "type": "include",
                        "match": "any",
                        "filters": [
                            {
                                "fieldName": "fill",
                                "config": {"id": "greater", "options": {"value": 80}},
                            }
                        ],
                    },
                )
            )
            .span(12)
            .height(10)
        )
        .with_panel(
            table.Panel()
            .title("Estimated hours to full")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    'SELECT last("time_to_full_h") AS "hours to full" FROM "agg"."bin_1h" WHERE'
                    f' $timeFilter AND {SITE} GROUP BY "device_id"'
                ).table()
            )
            .span(12)
            .height(8)
        )
        .with_panel(
            series(
                "Collections",
                "short",
                InfluxQL(
                    'SELECT sum("collections") FROM "agg"."bin_1h" WHERE $timeFilter'
                    f' AND {SITE} GROUP BY time(1h), "device_id"'
                ).alias("$tag_device_id"),
            )
        )
    )


def devices() -> Dashboard:
    return (
        _dashboard(
            "smartplace-devices",
            "Devices",
            "Last seen, batteries, radio links, and what ingest refused from whom.",
        )
        .with_variable(tag_variable("kind", "Kind", '"raw"."device_info"', "kind"))
        .with_variable(tag_variable("device", "Device", '"raw"."device_status"', "device_id"))
        .with_panel(
            table.Panel()
            .title("Every registered device, silent first")
            .description(
                "From device_health, which ingest writes for every registered device each"
                " minute, whether it sends anything or not."
            )
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    'SELECT last("silent_s") AS "silent (s)", last("battery_pct") AS "battery (%)",'
                    ' last("rssi_dbm") AS "RSSI (dBm)", last("snr_db") AS "SNR (dB)",'
                    ' last("firmware") AS "firmware" FROM "raw"."device_health" WHERE $timeFilter'
                    ' AND "kind" =~ /^$kind$/ GROUP BY "device_id", "kind", "site", "status"'
                ).table()
            )
            .with_transformation(
                DataTransformerConfig(
                    id_val="sortBy", options={"sort": [{"field": "silent (s)", "desc": True}]}
                )
            )
            .span(12)
            .height(10)
        )
        .with_panel(
            table.Panel()
            .title("Rejected, by device")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    'SELECT sum("rejected") AS "rejected", sum("received") AS "received" FROM'
                    ' "raw"."delivery_ledger" WHERE $timeFilter GROUP BY "device_id"'
                ).table()
            )
            .span(12)
            .height(10)
        )
        .with_panel(
            series(
                "Battery",
                "percent",
                InfluxQL(
                    f'SELECT mean("battery_pct") FROM "raw"."device_status" WHERE $timeFilter AND {DEVICE}'
                    ' GROUP BY time($__interval), "device_id"'
                ).alias("$tag_device_id"),
            )
        )
        .with_panel(
            series(
                "Signal (RSSI)",
                "dBm",
                InfluxQL(
                    f'SELECT mean("rssi_dbm") FROM "raw"."device_status" WHERE $timeFilter AND {DEVICE}'
                    ' GROUP BY time($__interval), "device_id"'
                ).alias("$tag_device_id"),
            )
        )
        .with_panel(
            table.Panel()
            .title("Rejects, by reason")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    'SELECT "device_id", "detail", "payload" FROM "raw"."ingest_rejects" WHERE'
                    ' $timeFilter GROUP BY "reason"'
                ).table()
            )
            .span(24)
            .height(10)
        )
    )


def pipeline() -> Dashboard:
    def rate(field: str, ref: str = "A") -> InfluxQL:
        return InfluxQL(
            f'SELECT non_negative_derivative(max("{field}"), 1s) AS "{field}" FROM'
            ' "raw"."ingest_stats" WHERE $timeFilter GROUP BY time($__interval), "worker"',
            ref,
        ).alias(f"$tag_worker {field}")

    return (
        _dashboard(
            "smartplace-pipeline",
            "Pipeline",
            "Ingest's own health: readings in and out, rejects, the spool, write lag and retries.",
        )
        .with_panel(
            series(
                "Readings per second",
                "reqps",
                rate("received"),
                rate("accepted", "B"),
                rate("rejected", "C"),
                rate("raw_points_written", "D"),
                width=24,
            )
        )
        .with_panel(
            series(
                "Rejected per second, by reason",
                "reqps",
                InfluxQL(
                    'SELECT non_negative_derivative(max(/^rejected_/), 1s) FROM "raw"."ingest_stats"'
                    ' WHERE $timeFilter GROUP BY time($__interval), "worker"'
                ),
            )
        )
        .with_panel(
            series(
                "Spool depth",
                "bytes",
                InfluxQL(
                    'SELECT max("spool_bytes") FROM "raw"."ingest_stats" WHERE $timeFilter'
                    ' GROUP BY time($__interval), "worker"'
                ).alias("$tag_worker"),
            )
        )
        .with_panel(
            series(
                "Write lag (oldest unwritten reading)",
                "s",
                InfluxQL(
                    'SELECT max("oldest_unwritten_age_s") FROM "raw"."ingest_stats" WHERE'
                    ' $timeFilter GROUP BY time($__interval), "worker"'
                ).alias("$tag_worker"),
            )
        )
        .with_panel(series("Write retries per second", "reqps", rate("write_retries")))
        .with_row(Row("Nothing lost"))
        .with_panel(
            series(
                "Backlog (acknowledged, not yet written)",
                "short",
                InfluxQL(
                    'SELECT max("backlog") FROM "raw"."ingest_stats" WHERE $timeFilter'
                    ' GROUP BY time($__interval), "worker"'
                ).alias("$tag_worker"),
            )
        )
        .with_panel(
            series(
                "Refused by InfluxDB and late beyond grace, per second",
                "reqps",
                rate("write_refused_lines"),
                rate("late_beyond_grace", "B"),
            )
        )
        .with_panel(
            table.Panel()
            .title("Acknowledging the broker (false: spool full, the broker holds the backlog)")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    'SELECT last("acknowledging") AS "acknowledging", last("backlog") AS "backlog"'
                    ' FROM "raw"."ingest_stats" WHERE $timeFilter GROUP BY "worker"'
                ).table()
            )
            .span(24)
            .height(5)
        )
    )


DASHBOARDS = {
    "overview": overview,
    "air-quality": air_quality,
    "footfall": footfall,
    "bins": bins,
    "devices": devices,
    "pipeline": pipeline,
}
