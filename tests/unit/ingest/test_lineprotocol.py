"""Line protocol text, character for character."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.windows.tumbling import WindowAggregates
from smartplace.ingest.write.aggregates import window_lines
from smartplace.ingest.write.points import Points, raw_lines, reject_lines
from smartplace.lineprotocol import (
    Precision,
    escape_measurement,
    escape_tag,
    format_point,
    string_field,
)
from smartplace.schemas.reasons import Reject, RejectReason


def test_escaping_follows_the_line_protocol_rules() -> None:
    assert escape_measurement("air quality,x=1") == r"air\ quality\,x=1"
    assert escape_tag("a b,c=d") == r"a\ b\,c\=d"
    assert string_field('say "hi" \\ there') == r'"say \"hi\" \\ there"'


@pytest.mark.parametrize("bad", ["", "line\nbreak", "cr\r", "ends with \\"])
def test_tags_that_cannot_be_escaped_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be a line-protocol tag"):
        escape_tag(bad)


@given(st.text(max_size=400))
def test_string_fields_never_carry_a_newline_or_an_unescaped_quote(text: str) -> None:
    field = string_field(text)
    body = field[1:-1]
    assert field.startswith('"')
    assert field.endswith('"')
    assert "\n" not in field
    assert "\r" not in field
    assert len(body.replace('\\"', "").replace("\\\\", "")) <= 256
    assert '"' not in body.replace('\\"', "")


def test_raw_lines_write_measured_fields_and_flags() -> None:
    cols = ReadingColumns(
        measurement="air_quality",
        kind="air_quality",
        fields=("pm25_ugm3", "no2_ugm3"),
        field_types=("float", "float"),
        device_ids=np.array(["aq-0001", "aq-0002"]),
        ts_ns=np.array([1_700_000_000_000_000_000, 1_700_000_001_000_000_000], dtype=np.int64),
        values=np.array([[12.5, np.nan], [0.1, 33.0]]),
        qc_flags=np.array([1, 0], dtype=np.uint32),
    )
    assert raw_lines(cols) == [
        "air_quality,device_id=aq-0001,kind=air_quality pm25_ugm3=12.5,qc_flags=1i 1700000000000000000",
        "air_quality,device_id=aq-0002,kind=air_quality pm25_ugm3=0.1,no2_ugm3=33.0,qc_flags=0i 1700000001000000000",
    ]


def test_raw_lines_leave_out_a_field_no_reading_has_and_type_every_other() -> None:
    cols = ReadingColumns(
        measurement="bin",
        kind="bin",
        fields=("fill_pct", "distance_mm", "tilt", "count"),
        field_types=("float", "float", "bool", "int"),
        device_ids=np.array(["bin-0001", "bin-0001"]),
        ts_ns=np.array([10, 20], dtype=np.int64),
        values=np.array([[50.0, np.nan, 1.0, 3.0], [75.5, np.nan, 0.0, 4.0]]),
        qc_flags=np.array([0, 0], dtype=np.uint32),
    )
    assert raw_lines(cols) == [
        "bin,device_id=bin-0001,kind=bin fill_pct=50.0,tilt=true,count=3i,qc_flags=0i 10",
        "bin,device_id=bin-0001,kind=bin fill_pct=75.5,tilt=false,count=4i,qc_flags=0i 20",
    ]


def test_air_quality_windows_write_stats_for_measured_fields_at_the_window_start() -> None:
    nan = np.nan
    aggs = WindowAggregates(
        measurement="air_quality_1m",
        fields=("pm25_ugm3", "no2_ugm3"),
        device_ids=np.array(["aq-0001"]),
        window_start_ns=np.array([1_699_999_980_000_000_000], dtype=np.int64),
        mean=np.array([[2.5, nan]]),
        min=np.array([[1.0, nan]]),
        max=np.array([[4.0, nan]]),
        count=np.array([[2, 0]]),
        late=np.zeros(0, dtype=bool),
        sum=np.array([[5.0, nan]]),
        first=np.array([[1.0, nan]]),
        first_ts=np.array([[1, 0]]),
        last=np.array([[4.0, nan]]),
        last_ts=np.array([[2, 0]]),
        kind="air_quality",
        p95=np.array([[nan, nan]]),
    )
    assert window_lines(aggs, {"aq-0001": "merseyway"}) == [
        "air_quality_1m,device_id=aq-0001,site=merseyway "
        "pm25_ugm3_mean=2.5,pm25_ugm3_min=1.0,pm25_ugm3_max=4.0,pm25_ugm3_count=2i 1699999980000000000"
    ]


def test_reject_lines_tag_only_the_reason() -> None:
    reject = Reject(
        RejectReason.OUT_OF_RANGE, 'pm25_ugm3: "too" high', "t/x", "aq-1", '{"a":\n1}', 5
    )
    assert reject_lines([reject], [7], [0]) == [
        'ingest_rejects,reason=out_of_range count=1i,topic="t/x",detail="pm25_ugm3: \\"too\\" high",'
        'payload="{\\"a\\": 1}",device_id="aq-1" 7'
    ]


def test_rejects_sharing_a_unit_of_precision_are_told_apart_by_seq() -> None:
    reject = Reject(RejectReason.MALFORMED_JSON, "x", "t/x", None, "{", 5)
    lines = reject_lines([reject] * 3, [10**9 + 1, 10**9 + 2, 2 * 10**9], [0, 1, 0], "s")
    assert [line.split(" ")[0] for line in lines] == [
        "ingest_rejects,reason=malformed_json",
        "ingest_rejects,reason=malformed_json,seq=1",
        "ingest_rejects,reason=malformed_json",
    ]
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["1", "1", "2"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_point_never_carries_nan_or_infinity(value: float) -> None:
    with pytest.raises(ValueError, match="no NaN or infinity"):
        format_point("m", {"device_id": "d-1"}, {"v": value}, 1)


@pytest.mark.parametrize(
    ("precision", "ts"),
    [
        ("ns", "1795514400123456789"),
        ("us", "1795514400123456"),
        ("ms", "1795514400123"),
        ("s", "1795514400"),
    ],
)
def test_timestamps_are_truncated_to_the_configured_precision(
    precision: Precision, ts: str
) -> None:
    line = format_point(
        "m", {"device_id": "a b"}, {"v": 1.0, "t": "x 1"}, 1795514400123456789, precision
    )
    assert line == f'm,device_id=a\\ b v=1.0,t="x 1" {ts}'
    cols = ReadingColumns(
        measurement="air_quality",
        kind="air_quality",
        device_ids=np.array(["aq-1"]),
        ts_ns=np.array([1795514400123456789], dtype=np.int64),
        fields=("pm25_ugm3",),
        field_types=("float",),
        values=np.array([[4.5]]),
        qc_flags=np.zeros(1, dtype=np.uint32),
    )
    assert raw_lines(cols, precision) == [
        f"air_quality,device_id=aq-1,kind=air_quality pm25_ugm3=4.5,qc_flags=0i {ts}"
    ]


def test_points_name_the_device_of_each_reading_line_across_runs() -> None:
    points, more = Points(), Points()
    points.add(["r1", "r2"], "air_quality", "air_quality", ["aq-1", "aq-2"])
    points.add(["x1"], "ingest_rejects")
    more.add(["b1"], "bin", "bin", ["bin-9"])
    points.extend(more)
    assert points.lines == ["r1", "r2", "x1", "b1"]
    assert [points.reading_device(i) for i in range(4)] == ["aq-1", "aq-2", None, "bin-9"]
    assert [points.run_of(i)[0].measurement for i in range(4)] == [
        "air_quality",
        "air_quality",
        "ingest_rejects",
        "bin",
    ]
    with pytest.raises(IndexError):
        points.run_of(4)
    with pytest.raises(ValueError, match="1 devices for 2 lines"):
        points.add(["a", "b"], "m", "k", ["d"])
