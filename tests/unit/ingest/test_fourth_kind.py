"""A kind is a spec: a throwaway fourth kind, declared by its spec alone, runs from payload to
line protocol and aggregates with no other code knowing of it."""

from __future__ import annotations

from typing import Annotated, ClassVar

import orjson
import pytest
from pydantic import Field

from smartplace.config import Settings
from smartplace.devices.model import DeviceRecord
from smartplace.ingest.decode.screen import screen_for
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas.kinds import KINDS, KindSpec
from smartplace.schemas.reading import Reading

MINUTE_NS = 60 * 10**9
START_NS = 1_795_514_400 * 10**9  # 2026-11-24T10:00:00Z, a whole day
DB = Annotated[float, Field(ge=0, le=200)]


class NoiseReading(Reading):
    measurement: ClassVar[str] = "noise"

    laeq_db: DB
    """Equivalent continuous sound level over the reading's period, dB(A)."""
    lamax_db: DB | None = None
    """Loudest moment of the period, dB(A)."""


NOISE = KindSpec(name="noise", model=NoiseReading, checked_fields=("laeq_db",), min_window_s=900)


@pytest.fixture
def noise(monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setitem(KINDS, "noise", NOISE)
    pipeline = Pipeline(Settings())
    pipeline.directory.restore(DeviceRecord(device_id="nz-0001", kind="noise", site="merseyway"))
    return pipeline


def _message(body: object, minute: int) -> RawMessage:
    return RawMessage(
        "smartplace/noise/nz-0001/reading", orjson.dumps(body), START_NS + minute * MINUTE_NS
    )


def test_a_kind_declared_by_its_spec_alone_is_stored_raw_and_aggregated(noise: Pipeline) -> None:
    assert screen_for(NoiseReading) is not None  # the fast way in applies to it as well
    out = noise.process(
        [
            _message({"ts": START_NS / 1e9 + 60, "laeq_db": 50.0, "lamax_db": 71.5}, 1),
            _message(
                [
                    {"ts": START_NS / 1e9 + 120, "laeq_db": 60.0},
                    {"ts": START_NS / 1e9 + 180, "laeq_db": 70.0, "lamax_db": 80.0},
                ],
                3,
            ),
            _message({"ts": START_NS / 1e9 + 240, "laeq_db": 250.0}, 4),  # out of its range
        ]
    )
    prefix = "noise,device_id=nz-0001,kind=noise,site=merseyway "
    assert out.raw.lines[:3] == [
        prefix + f"laeq_db=50.0,lamax_db=71.5,qc_flags=0i {START_NS + 60 * 10**9}",
        prefix + f"laeq_db=60.0,qc_flags=0i {START_NS + 120 * 10**9}",
        prefix + f"laeq_db=70.0,lamax_db=80.0,qc_flags=0i {START_NS + 180 * 10**9}",
    ]
    assert [(r.reason.value, r.field_path) for r in out.rejects] == [("out_of_range", "laeq_db")]
    assert [out.raw.reading_device(i) for i in range(3)] == ["nz-0001"] * 3
    assert out.agg.lines == []  # no window has closed yet

    flushed = noise.flush().agg.lines
    # Only the windows its spec allows (15 minutes and more), each written as "measured".
    fields = "laeq_db_mean=60.0,laeq_db_min=50.0,laeq_db_max=70.0,laeq_db_count=3i"
    fields += ",lamax_db_mean=75.75,lamax_db_min=71.5,lamax_db_max=80.0,lamax_db_count=2i"
    day_ns = START_NS - START_NS % (86_400 * 10**9)
    assert sorted(flushed) == sorted(
        [
            f"noise_15m,device_id=nz-0001,site=merseyway {fields} {START_NS}",
            f"noise_1h,device_id=nz-0001,site=merseyway {fields} {START_NS}",
            f"noise_1d,device_id=nz-0001,site=merseyway {fields} {day_ns}",
        ]
    )


def test_its_checked_field_gets_the_quality_checks(noise: Pipeline) -> None:
    body = [{"ts": START_NS / 1e9 + 60 * m, "laeq_db": 55.0} for m in range(8)]
    out = noise.process([_message(body, 9)])
    flags = [int(line.rsplit("qc_flags=", 1)[1].split("i", 1)[0]) for line in out.raw.lines[:8]]
    # Six identical values running make a flatline (QualityRules.flatline_run).
    assert flags == [0, 0, 0, 0, 0, 4, 4, 4]
