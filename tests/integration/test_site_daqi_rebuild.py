"""The hourly site air quality index, lost with the saved state, rebuilt from raw points in real
influxd: every hour it writes again equals the index of the whole stream, running means and all
(a PM running mean reaches back a day before the first window rebuilt)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from smartplace.influx import InfluxClient
from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.recovery.rebuild import rebuild_windows
from smartplace.ingest.recovery.state import aggregated_fields
from smartplace.ingest.windows.site_daqi import HOUR_NS, SiteDaqi
from smartplace.ingest.windows.tumbling import WindowAggregator
from smartplace.ingest.write.points import raw_lines
from smartplace.storage import SITE_DAQI

pytestmark = pytest.mark.integration

FIELDS = ("pm25_ugm3", "pm10_ugm3", "no2_ugm3")
DEVICES = {"aq-0001": "merseyway", "aq-0002": "merseyway", "aq-0003": "hazel-grove"}
STEP_NS = 600 * 10**9  # a reading every 10 minutes


def _stream(start_ns: int, end_ns: int) -> ReadingColumns:
    times = np.arange(start_ns, end_ns, STEP_NS, dtype=np.int64)
    devices = list(DEVICES)
    ts = np.repeat(times, len(devices))
    device_ids = np.array(devices * len(times), dtype=np.str_)
    hours = (ts - start_ns) / HOUR_NS
    index = np.tile(np.arange(len(devices)), len(times))
    values = np.column_stack(
        [
            np.round(8 + 30 * np.abs(np.sin(hours / 7)) + index, 1),  # PM2.5 rising into High
            np.round(15 + 40 * np.abs(np.sin(hours / 9)) + index, 1),
            np.round(20 + 5 * index + hours % 5, 1),
        ]
    )
    return ReadingColumns(
        measurement="air_quality",
        kind="air_quality",
        fields=FIELDS,
        field_types=("float",) * len(FIELDS),
        device_ids=device_ids,
        ts_ns=ts,
        values=values,
        qc_flags=np.zeros(len(ts), dtype=np.uint32),
        sites=np.array([DEVICES[d] for d in device_ids.tolist()], dtype=np.str_),
    )


def test_the_site_index_is_rebuilt_from_a_day_of_raw_points(influx: InfluxClient) -> None:
    now_ns = time.time_ns()
    this_hour = now_ns - now_ns % HOUR_NS
    midnight = now_ns - now_ns % (24 * HOUR_NS)
    stream = _stream(midnight - 26 * HOUR_NS, this_hour + 20 * 60 * 10**9)
    influx.ensure_storage()
    lines = raw_lines(stream)
    for start in range(0, len(lines), 5000):
        influx.write(lines[start : start + 5000], influx.settings.raw_retention_policy)

    whole = SiteDaqi()
    emitted = whole.add(stream) + whole.flush()  # flush: the open hour too
    expected = sorted(line for line in emitted if int(line.rsplit(" ", 1)[1]) >= midnight)
    assert len(expected) >= 2 * ((now_ns - midnight) // HOUR_NS)  # both sites, every hour

    daqi = SiteDaqi()
    daqi.rebuilding = True
    fields = aggregated_fields("air_quality")
    windows = {"air_quality": [WindowAggregator("air_quality", fields, 86_400, 30)]}
    points = rebuild_windows(influx, windows, now_ns, DEVICES, {}, "ns", daqi)
    assert not daqi.rebuilding
    written = [line for line in points.lines if line.startswith(f"{SITE_DAQI},")]
    rebuilt = sorted(written + daqi.flush())  # the open hour, once complete
    assert rebuilt == expected
