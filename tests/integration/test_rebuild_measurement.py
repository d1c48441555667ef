"""The rebuild reads a kind's raw points where ingest writes them: its model's measurement,
which a spec may name apart from the kind (smartplace/schemas/kinds.py)."""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import pytest

from smartplace.influx import InfluxClient
from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.recovery.rebuild import rebuild_windows
from smartplace.ingest.windows.tumbling import WindowAggregator
from smartplace.ingest.write.points import raw_lines
from smartplace.schemas.kinds import KINDS, KindSpec
from smartplace.schemas.reading import Reading

pytestmark = pytest.mark.integration

HOUR_NS = 3600 * 10**9


class SoundReading(Reading):
    measurement: ClassVar[str] = "sound_level"  # not the kind's name

    laeq_db: float


def test_a_kind_whose_measurement_is_not_its_name_is_rebuilt_from_its_raw_points(
    influx: InfluxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KINDS, "noise", KindSpec(name="noise", model=SoundReading))
    now_ns = time.time_ns()
    last_hour = now_ns - now_ns % HOUR_NS - HOUR_NS
    ts = np.array([last_hour + 60 * 10**9 * m for m in range(3)], dtype=np.int64)
    columns = ReadingColumns(
        measurement=SoundReading.measurement,
        kind="noise",
        fields=("laeq_db",),
        field_types=("float",),
        device_ids=np.array(["nz-0001"] * len(ts), dtype=np.str_),
        ts_ns=ts,
        values=np.array([[50.0 + k] for k in range(len(ts))]),
        qc_flags=np.zeros(len(ts), dtype=np.uint32),
    )
    influx.ensure_storage()
    influx.write(raw_lines(columns), influx.settings.raw_retention_policy)

    # A grace of two hours: last hour's window is still open.
    hourly = WindowAggregator("noise", ("laeq_db",), 3600, 7200)
    rebuild_windows(influx, {"noise": [hourly]}, now_ns, {}, {})
    assert hourly.open_windows == 1
    [row] = hourly._open.values()
    assert (int(hourly._counts[row, 0]), float(hourly._sums[row, 0])) == (3, 153.0)
