"""Windows rebuilt from InfluxDB count their devices as heard at the rebuild: the first batch
of another device does not close them as quiet (never heard) under a device whose backlog is
still on its way."""

from __future__ import annotations

import time

import numpy as np
import pytest

from smartplace.influx import InfluxClient
from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.recovery.rebuild import rebuild_windows
from smartplace.ingest.recovery.state import aggregated_fields
from smartplace.ingest.windows.tumbling import WindowAggregator
from smartplace.ingest.write.points import raw_lines

pytestmark = pytest.mark.integration

NS = 10**9
FIELDS = aggregated_fields("air_quality")
PM25 = FIELDS.index("pm25_ugm3")


def _columns(device: str, ts_s: list[int], value: float) -> ReadingColumns:
    values = np.full((len(ts_s), len(FIELDS)), np.nan)
    values[:, PM25] = value
    return ReadingColumns(
        measurement="air_quality",
        kind="air_quality",
        fields=FIELDS,
        field_types=tuple("float" for _ in FIELDS),
        device_ids=np.array([device] * len(ts_s), dtype=np.str_),
        ts_ns=np.array(ts_s, dtype=np.int64) * NS,
        values=values,
        qc_flags=np.zeros(len(ts_s), dtype=np.uint32),
    )


def test_a_rebuilt_device_is_not_quiet_until_a_grace_period_after_the_rebuild(
    influx: InfluxClient,
) -> None:
    now_s = int(time.time())
    minute = now_s - now_s % 60 - 300  # a minute that ended four or five minutes ago
    influx.ensure_storage()
    for device in ("aq-0001", "aq-0002"):
        lines = raw_lines(_columns(device, [minute + 5, minute + 20], 5.0))
        influx.write(lines, influx.settings.raw_retention_policy)
    # An hour's windows too: neither device has been quiet for the longest window.
    minutes = WindowAggregator("air_quality", FIELDS, 60, 120)
    hours = WindowAggregator("air_quality", FIELDS, 3600, 120)
    rebuild_windows(influx, {"air_quality": [minutes, hours]}, time.time_ns(), {}, {})

    # aq-0001's backlog comes first; aq-0002's reading of that minute comes in the next batch.
    arrived = time.time_ns()
    include = np.ones(1, dtype=bool)
    minutes.add(_columns("aq-0001", [minute + 35], 6.0), include, arrived)
    late = minutes.add(_columns("aq-0002", [minute + 35], 6.0), include, arrived + 10**6)
    assert late.late_beyond_grace == 0
    counts = {
        minutes._slots.names[s]: int(minutes._counts[row, PM25])
        for (s, _), row in minutes._open.items()
    }
    assert counts == {"aq-0001": 3, "aq-0002": 3}


def test_a_grace_raised_after_a_rebuild_does_not_reopen_a_window_written_before_it(
    influx: InfluxClient,
) -> None:
    """Windows written before the restart stay closed whatever the grace becomes, as the
    live path keeps them: a quiet device's and, for an active one, those before the span
    the rebuild read back."""
    now_s = int(time.time())
    minute = now_s - now_s % 60
    influx.ensure_storage()
    written = {"aq-quiet": [minute - 3 * 3600 + 5], "aq-active": [minute - 1800 + 5, minute - 55]}
    for device, ts_s in written.items():
        influx.write(raw_lines(_columns(device, ts_s, 5.0)), influx.settings.raw_retention_policy)
    minutes = WindowAggregator("air_quality", FIELDS, 60, 120)
    rebuild_windows(influx, {"air_quality": [minutes]}, time.time_ns(), {}, {})

    minutes.grace_ns = 6 * 3600 * NS  # as a restart with a grace of six hours restores it
    include = np.ones(1, dtype=bool)
    for device, ts_s in written.items():
        late = minutes.add(_columns(device, [ts_s[0] + 10], 9.0), include, time.time_ns())
        assert (device, late.late_beyond_grace) == (device, 1)
