"""The six dashboards operations staff use, built with grafana-foundation-sdk.

Every query is raw InfluxQL against the measurements ingest writes (see the
README's Storage section); ``$timeFilter``, ``$__interval`` and the template
variables are Grafana's, expanded when a panel runs. ``smartplace dashboards
build`` writes them to ``dashboards/*.json``; a test fails when the committed
JSON differs from what this code builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, geomap, heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import geomap as geomap_builders
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
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
DAQI_COLOURS = (
    "#9CFF9C",
    "#31FF00",
    "#31CF00",
    "#FFFF00",
    "#FFCF00",
    "#FF9A00",
    "#FF6464",
    "#FF0000",
    "#990000",
    "#CE30FF",
)
"""DEFRA's colour for each index 1-10, as its air quality services show them. Source: the
openair R package (openair-project/openair, R/openColours.R lines 1239-1250 at 97886840,
"taken directly from https://check-air-quality.service.gov.uk/"); the Met Office's ADAQ
toolkit's ``daqi_cmap`` gives the same ten colours as RGB triples."""
DAQI_STEPS: list[tuple[float | None, str]] = [
    (None if index == 1 else index, colour) for index, colour in enumerate(DAQI_COLOURS, 1)
]
# Each pollutant's DAQI band edges, in ug/m3 (PM: 24 h means; NO2: hourly means).
POLLUTANT_STEPS = {
    "pm25_ugm3": [(None, "green"), (36, "yellow"), (54, "red"), (71, "purple")],
    "pm10_ugm3": [(None, "green"), (51, "yellow"), (76, "red"), (101, "purple")],
    "no2_ugm3": [(None, "green"), (201, "yellow"), (401, "red"), (601, "purple")],
}
DAQI_BANDS = [(1, 3, "Low"), (4, 6, "Moderate"), (7, 9, "High"), (10, 10, "Very High")]
"""DEFRA's band words (DOMAIN.md), shown with the index: "3 Low", "7 High"."""
STALE = "stale"
STALE_COLOUR = "#808080"
STALE_AFTER_H = 2
"""A site whose newest hourly index is for an hour that ended longer ago than this is stale:
its hour starts more than STALE_AFTER_H + 1 hours ago (daqi_1h is stamped at the hour's start)."""
FRESH_INDEX = f"time > now() - {STALE_AFTER_H + 1}h"


def band_of(index: int) -> str:
    return next(word for low, high, word in DAQI_BANDS if low <= index <= high)


def daqi_words() -> list[model.ValueMapping]:
    """Each index as "N Band" in its DEFRA colour; no index (a stale site) as grey "stale"."""
    return [
        model.ValueMap(
            options={
                str(index): model.ValueMappingResult(
                    text=f"{index} {band_of(index)}", color=colour, index=index - 1
                )
                for index, colour in enumerate(DAQI_COLOURS, 1)
            }
        ),
        model.SpecialValueMap(
            options=model.DashboardSpecialValueMapOptions(
                match=model.SpecialValueMatch.NULL,
                result=model.ValueMappingResult(text=STALE, color=STALE_COLOUR, index=10),
            )
        ),
    ]


PM_ONLY_WORDS: list[model.ValueMapping] = [
    model.ValueMap(
        options={
            "true": model.ValueMappingResult(text="DAQI (PM only)", index=0),
            "false": model.ValueMappingResult(text="PM and gases", index=1),
        }
    )
]
"""daqi_1h's ``pm_only``: true where no NO2 or O3 index went into the site's index."""


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
        .tags([TAG])
        .time("now-24h", "now")
        .refresh("1m")
        .timezone("browser")
        .links(
            [
                # Every smartplace board, from every other, keeping the time range and the
                # variables (so a site chosen here stays chosen there).
                DashboardLink("Smartplace boards")
                .type(model.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .as_dropdown(True)
                .keep_time(True)
                .include_vars(True)
            ]
        )
    )


TAG = "smartplace"
"""Every board's tag: the dashboard links list the boards by it."""
BOARD_UIDS = {
    "air quality": "smartplace-air-quality",
    "bins": "smartplace-bins",
    "footfall": "smartplace-footfall",
}


def site_links(value: str) -> list[dict[str, object]]:
    """Data links from a site to the air quality, bin and footfall boards filtered by it.

    ``value`` is how the panel names the site: ``${__value.raw}`` on a table's site column,
    ``${__field.labels.site}`` on a series tagged by site (Grafana's data link variables)."""
    return [
        {
            "title": f"{name.capitalize()} at this site",
            "url": f"/d/{uid}?var-site={value}&${{__url_time_range}}",
        }
        for name, uid in BOARD_UIDS.items()
    ]


Linkable = TypeVar("Linkable", timeseries.Panel, table.Panel, stat.Panel, geomap.Panel)


def with_data_links(panel: Linkable, links: list[dict[str, object]]) -> Linkable:
    """Links on every field (the SDK types field links as dashboard links; Grafana's data
    link is {title, url})."""
    built = panel._internal  # the SDK has no setter for a raw data link
    if built.field_config is None:
        built.field_config = model.FieldConfigSource()
    if built.field_config.defaults is None:
        built.field_config.defaults = model.FieldConfig()
    built.field_config.defaults.links = links  # type: ignore[assignment]
    return panel


def site_column_links(panel: table.Panel) -> table.Panel:
    return panel.override_by_name(
        "site", [model.DynamicConfigValue(id_val="links", value=site_links("${__value.raw}"))]
    )


def join_by(field: str) -> DataTransformerConfig:
    return DataTransformerConfig(id_val="joinByField", options={"byField": field, "mode": "outer"})


def sort_by(field: str, desc: bool = False) -> DataTransformerConfig:
    return DataTransformerConfig(
        id_val="sortBy", options={"sort": [{"field": field, "desc": desc}]}
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
                # Each site's latest hour, then the worst of those: now, not the day's maximum;
                # a stale site's old hour is not now, so it is left out ("stale" if all are).
                'SELECT max("index") FROM (SELECT last("index") AS "index" FROM "agg"."daqi_1h"'
                f' WHERE {FRESH_INDEX} GROUP BY "site")',
                steps=DAQI_STEPS,
            ).mappings(daqi_words())
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
            .view(town_view())
            .span(24)
            .height(14)
        )
    )


def fresh_daqi() -> InfluxQL:
    """Each site's newest index, set-by pollutant and PM-only flag, if its hour is not stale."""
    return InfluxQL(
        'SELECT last("index") AS "index", last("pollutant") AS "set by", last("pm_only") AS'
        f' "PM only" FROM "agg"."daqi_1h" WHERE {FRESH_INDEX} AND {SITE} GROUP BY "site"'
    ).table()


def daqi_table() -> table.Panel:
    panel = (
        table.Panel()
        .title("Index now, by site (stale sites marked)")
        .description(
            f"index: the newest hourly index if its hour ended less than {STALE_AFTER_H} h ago,"
            " else 'stale'; last index and Time: the newest there is in the time range;"
            " PM only: 'DAQI (PM only)' where no gas was measured. Click a site for its boards."
        )
        .datasource(DATASOURCE)
        .with_target(fresh_daqi())
        .with_target(
            InfluxQL(
                'SELECT last("index") AS "last index" FROM "agg"."daqi_1h" WHERE $timeFilter'
                f' AND {SITE} GROUP BY "site"',
                "B",
            ).table()
        )
        .with_transformation(join_by("site"))
        .with_transformation(sort_by("index", desc=True))
        .override_by_name(
            "index",
            [
                model.DynamicConfigValue(id_val="mappings", value=daqi_words()),
                model.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                ),
            ],
        )
        .override_by_name(
            "last index", [model.DynamicConfigValue(id_val="mappings", value=daqi_words()[:1])]
        )
        .override_by_name(
            "PM only", [model.DynamicConfigValue(id_val="mappings", value=PM_ONLY_WORDS)]
        )
        .thresholds(thresholds(DAQI_STEPS))
        .span(8)
        .height(8)
    )
    return site_column_links(panel)


def daqi_map() -> geomap.Panel:
    """The sites on the map, each in its index's colour, or grey where stale."""
    return (
        geomap.Panel()
        .title("Index now, on the map")
        .description(
            "A site sits where its air quality monitors stand (the mean of their registered"
            " positions); its marker is coloured by the index now, grey where stale."
        )
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                'SELECT mean("latitude") AS "latitude", mean("longitude") AS "longitude" FROM'
                ' (SELECT last("latitude") AS "latitude", last("longitude") AS "longitude" FROM'
                f' "raw"."device_info" WHERE "kind" = \'air_quality\' AND {SITE} GROUP BY'
                ' "device_id", "site") GROUP BY "site"'
            ).table()
        )
        .with_target(fresh_daqi().ref_id("B"))
        .with_transformation(join_by("site"))
        .thresholds(thresholds(DAQI_STEPS))
        .mappings(daqi_words())
        .view(town_view())
        .layers(
            [
                common_builders.MapLayerOptions()
                .type("markers")
                .name("Sites")
                .location(
                    common_builders.FrameGeometrySource()
                    .mode(common.FrameGeometrySourceMode.COORDS)
                    .latitude("latitude")
                    .longitude("longitude")
                )
                .config(
                    {
                        "showLegend": True,
                        "style": {
                            "color": {"field": "index", "fixed": STALE_COLOUR},
                            "size": {"fixed": 12, "min": 4, "max": 20},
                            "text": {"mode": "field", "field": "site", "fixed": ""},
                        },
                    }
                )
            ]
        )
        .span(8)
        .height(8)
    )


def town_view() -> geomap_builders.MapViewConfig:
    return (
        geomap_builders.MapViewConfig()
        .id("coords")
        .lat(TOWN_CENTRE[0])  # type: ignore[arg-type]  # the SDK types degrees as int
        .lon(TOWN_CENTRE[1])  # type: ignore[arg-type]
        .zoom(14)
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
        .with_row(Row("Air quality index now"))
        .with_panel(
            stat.Panel()
            .title(f"Index now, per site (sites silent for {STALE_AFTER_H} h: see the table)")
            .description(
                "Each site's newest hourly index, in DEFRA's colours, when its hour ended less"
                f" than {STALE_AFTER_H} h ago. A site with nothing newer is not shown here as"
                " if current: the table beside marks it stale."
            )
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    f'SELECT last("index") FROM "agg"."daqi_1h" WHERE {FRESH_INDEX} AND {SITE}'
                    ' GROUP BY "site"'
                ).alias("$tag_site")
            )
            .thresholds(thresholds(DAQI_STEPS))
            .mappings(daqi_words())
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .min(1)
            .max(10)
            .span(8)
            .height(8)
        )
        .with_panel(daqi_table())
        .with_panel(daqi_map())
        .with_panel(
            with_data_links(
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
                .mappings(daqi_words()[:1]),
                site_links("${__field.labels.site}"),
            )
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
                    f' AND {DEVICE} GROUP BY time($__interval), "device_id"',
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


WEEKS_BACK = (1, 2, 3, 4)


def same_weekday() -> bargauge.Panel:
    """The last 24 hours against the same 24 hours (so the same weekday and hours) one, two,
    three and four weeks before. InfluxQL 1.x cannot shift a series in time and Grafana 11
    shifts a whole panel, not one query, so each bar is its own window relative to now()."""
    # footfall_1h is stamped at the hour's start and written once the hour has closed, so
    # the hour now running has no point yet: each window is the 24 whole hours before the
    # hour now() falls in (starts from now() - 25h, exclusive, to now() - 1h), and the same
    # hours 7, 14, 21 and 28 days before; "time > now() - 24h" summed 23 hours against 24.
    windows = [
        (
            f"{weeks} week{'s' if weeks > 1 else ''} before" if weeks else "last 24 h",
            f"time > now() - {168 * weeks + 25}h AND time <= now() - {168 * weeks + 1}h",
        )
        for weeks in (0, *WEEKS_BACK)
    ]
    panel = (
        bargauge.Panel()
        .title("People in: the last 24 h against the same 24 h in each of the 4 weeks before")
        .description(
            "Same weekday, same hours: each bar sums footfall_1h over the 24 whole hours"
            " before the hour now running (which is written once it closes), or the same"
            " hours exactly 7, 14, 21 or 28 days before. Follows the site filter, not the"
            " time picker."
        )
        .datasource(DATASOURCE)
        .min(0)
        .span(24)
        .height(6)
    )
    for k, (name, window) in enumerate(windows):
        panel = panel.with_target(
            InfluxQL(
                f'SELECT sum("count_in_sum") AS "{name}" FROM "agg"."footfall_1h" WHERE {window}'
                f" AND {SITE}",
                "ABCDE"[k],
            )
        )
    return panel


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
            with_data_links(
                series(
                    "People in, per site (hourly; longer buckets on long ranges)",
                    "short",
                    InfluxQL(hourly.replace("time(1h)", "time($__interval)")).alias("$tag_site"),
                    width=24,
                ).interval("1h"),
                site_links("${__field.labels.site}"),
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
        .with_panel(same_weekday())
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
                "In and out, whole town (15 min; longer buckets on long ranges)",
                "short",
                InfluxQL(
                    'SELECT sum("count_in_sum") AS "in", sum("count_out_sum") AS "out" FROM'
                    f' "agg"."footfall_15m" WHERE $timeFilter AND {SITE} GROUP BY'
                    " time($__interval)"
                ),
                width=24,
            ).interval("15m")
        )
    )


NOT_FILLING = 100_000
"""Hours to full written for a bin that is not filling (falling, flat, or just emptied): it
sorts after every real estimate and shows as 'not filling'."""
HOURS_TO_FULL = (
    # Innermost: each bin's hourly windows in range; time_to_full_h (ingest's estimate from the
    # hour's own rate of rise, first to last reading) is absent where the bin was not rising,
    # and fill() makes that NOT_FILLING, so the newest window decides, not an older estimate.
    'SELECT max("time_to_full_h") AS "ttf", last("fill_pct_last") AS "fill" FROM "agg"."bin_1h"'
    f' WHERE $timeFilter AND {SITE} GROUP BY time(1h), "device_id" fill({NOT_FILLING})'
)
COLLECTION_LIST = (
    'SELECT last("hours") AS "hours to full", last("fill") AS "fill" FROM ('
    # A full bin (fill 100 %) has no estimate (ingest stops at 100): ceil() makes it 0 hours.
    'SELECT "ttf" * ceil((100 - "fill") / 100) AS "hours", "fill" FROM ('
    f'{HOURS_TO_FULL}) WHERE "fill" <= 100) GROUP BY "device_id"'
)


ALARMS_UPPER = 1_000_000
"""The upper end of the 'YES' range for fire and tilt counts (any count a bin can send)."""


def collection_list() -> table.Panel:
    """Every bin, soonest full first, with where it stands and whether it burns or lies tilted."""
    alarms = [
        InfluxQL(
            f'SELECT count("{field}") AS "{name}" FROM "raw"."bin" WHERE time > now() - 1h AND'
            f' "{field}" = true AND {SITE} GROUP BY "device_id"',
            ref,
        ).table()
        for field, name, ref in (("fire_alarm", "fire (1 h)", "C"), ("tilt", "tilted (1 h)", "D"))
    ]
    panel = (
        table.Panel()
        .title("Collection list, soonest full first")
        .description(
            "Hours to full: from the newest hourly window's rate of rise (ingest's"
            " time_to_full_h); 0 for a full bin; 'not filling' where the newest hour did not"
            " rise (just emptied, flat). Location from the registry. Fire and tilt: readings"
            " raising them in the last hour. Click a site for its boards."
        )
        .datasource(DATASOURCE)
        .with_target(InfluxQL(COLLECTION_LIST).table())
        .with_target(
            InfluxQL(
                'SELECT last("latitude") AS "latitude", last("longitude") AS "longitude" FROM'
                f' "raw"."device_info" WHERE "kind" = \'bin\' AND {SITE} GROUP BY "device_id",'
                ' "site"',
                "B",
            ).table()
        )
        .with_target(alarms[0])
        .with_target(alarms[1])
        .with_transformation(join_by("device_id"))
        .with_transformation(sort_by("hours to full"))
        .override_by_name(
            "hours to full",
            [
                model.DynamicConfigValue(
                    id_val="mappings",
                    value=[
                        model.ValueMap(
                            options={
                                str(NOT_FILLING): model.ValueMappingResult(
                                    text="not filling", index=0
                                )
                            }
                        )
                    ],
                ),
            ],
        )
        .override_by_name(
            "fill",
            [
                model.DynamicConfigValue(id_val="unit", value="percent"),
                model.DynamicConfigValue(id_val="thresholds", value=thresholds(FILL_STEPS).build()),
                model.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                ),
            ],
        )
        .override_by_regexp(
            "/^(fire|tilted)/",
            [
                model.DynamicConfigValue(
                    id_val="mappings",
                    value=[
                        model.SpecialValueMap(
                            options=model.DashboardSpecialValueMapOptions(
                                match=model.SpecialValueMatch.NULL,
                                result=model.ValueMappingResult(text="no", index=0),
                            )
                        ),
                        model.RangeMap(
                            options=model.DashboardRangeMapOptions(
                                from_val=1,
                                to=ALARMS_UPPER,
                                result=model.ValueMappingResult(text="YES", color="red", index=1),
                            )
                        ),
                    ],
                ),
                model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
            ],
        )
        .span(24)
        .height(10)
    )
    return site_column_links(panel)


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
        .with_panel(collection_list())
        .with_panel(
            series(
                "Collections",
                "short",
                InfluxQL(
                    'SELECT sum("collections") FROM "agg"."bin_1h" WHERE $timeFilter'
                    f' AND {SITE} GROUP BY time($__interval), "device_id"'
                ).alias("$tag_device_id"),
            ).interval("1h")
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
                    ' last("firmware") AS "firmware", last("registry_status") AS "status"'
                    ' FROM "raw"."device_health" WHERE $timeFilter AND "kind" =~ /^$kind$/'
                    # Not by the status tag: a device whose status changed would be two rows.
                    ' GROUP BY "device_id", "kind", "site"'
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
            .description(
                "How many of each reason in the time range, and the latest example of each"
                " (one row per reason, however long the range: not every reject's row)."
            )
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    'SELECT sum("count") AS "rejects", last("device_id") AS "latest device",'
                    ' last("topic") AS "latest topic", last("detail") AS "latest detail",'
                    ' last("payload") AS "latest payload" FROM "raw"."ingest_rejects" WHERE'
                    ' $timeFilter GROUP BY "reason"'
                ).table()
            )
            .with_transformation(sort_by("rejects", desc=True))
            .span(24)
            .height(10)
        )
    )


LEDGER_INTERVAL = "1h"
"""The ledger counts per arrival hour: finer buckets would only split an hour's point from
nothing."""
LEDGER_BALANCE = (
    'SELECT sum("received") - sum("written") - sum("rejected") AS "unaccounted" FROM'
    ' "raw"."delivery_ledger" WHERE $timeFilter GROUP BY time($__interval) fill(none)'
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
            series(
                "Delivery ledger per arrival hour: received, written, rejected",
                "short",
                InfluxQL(
                    'SELECT sum("received") AS "received", sum("written") AS "written",'
                    ' sum("rejected") AS "rejected", sum("duplicate") AS "flagged duplicate",'
                    ' sum("late") AS "late beyond grace" FROM "raw"."delivery_ledger" WHERE'
                    " $timeFilter GROUP BY time($__interval) fill(none)"
                ),
            ).interval(LEDGER_INTERVAL)
        )
        .with_panel(
            series(
                "Ledger balance: received - written - rejected (0: nothing lost)",
                "short",
                InfluxQL(LEDGER_BALANCE),
            )
            .description(
                "Every reading ingest received is written or rejected (a line InfluxDB refused"
                " moves from written to rejected), so each arrival hour must balance at 0."
                " Duplicates and late readings are stored, flagged: they are not losses."
            )
            .interval(LEDGER_INTERVAL)
            .thresholds(thresholds([(None, "green"), (1, "red")]))
            .thresholds_style(threshold_style(common.GraphThresholdsStyleMode.LINE))
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
