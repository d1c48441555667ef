"""Storage names, in one place: what ingest writes is what dashboards and feeds read."""

from __future__ import annotations

import pytest

from smartplace.dashboards.provisioning import rendered_files
from smartplace.ingest.windows.tumbling import WindowAggregator
from smartplace.storage import aggregate_field, aggregate_measurement, in_policies


def test_an_aggregate_measurement_is_the_one_ingest_writes() -> None:
    assert aggregate_measurement("footfall", 900) == "footfall_15m"
    assert WindowAggregator("bin", ("fill_pct",), 86_400, 30).measurement == "bin_1d"
    assert aggregate_field("pm25_ugm3", "p95") == "pm25_ugm3_p95"
    with pytest.raises(ValueError, match="'median' is not one of mean, min, max, count, p95"):
        aggregate_field("pm25_ugm3", "median")


def test_queries_move_onto_the_configured_policies_and_nothing_else_changes() -> None:
    query = 'SELECT "raw" FROM "raw"."bin" WHERE "x" = \'"agg"\' UNION "agg"."bin_1h"'
    assert in_policies(query, "r30", "forever") == (
        'SELECT "raw" FROM "r30"."bin" WHERE "x" = \'"agg"\' UNION "forever"."bin_1h"'
    )


def test_dashboards_and_alerts_built_for_other_policies_read_only_those() -> None:
    default, moved = rendered_files(), rendered_files(("r30", "forever"))
    assert default.keys() == moved.keys()
    for name, text in moved.items():
        for default_policy in ("raw", "agg"):
            assert f'\\"{default_policy}\\".\\"' not in text, name
            assert f'"{default_policy}"."' not in text, name
    assert '\\"r30\\".\\"delivery_ledger\\"' in moved["pipeline.json"]
    assert '"forever"."daqi_1h"' in moved["provisioning/alerting/smartplace.yaml"]
    assert (
        moved["pipeline.json"].replace("r30", "raw").replace("forever", "agg")
        == default["pipeline.json"]
    )
