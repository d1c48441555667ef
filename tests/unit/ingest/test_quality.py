"""Quality flags, each on readings whose verdict is worked out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartplace.ingest.check.quality import QualityChecker, count_flags, nan_median, robust_z
from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.decode.flags import QcFlag
from smartplace.schemas.kinds import AIR_QUALITY

S = 1_000_000_000
NAN = float("nan")
FIELDS = ("pm25_ugm3", "pm10_ugm3", "no2_ugm3", "humidity_pct")


def batch(rows: list[tuple[str, int, float, float, float, float]]) -> ReadingColumns:
    """(device, second, pm25, pm10, no2, humidity) rows, in arrival order."""
    return ReadingColumns(
        measurement="air_quality",
        kind="air_quality",
        fields=FIELDS,
        field_types=("float",) * 4,
        device_ids=np.array([r[0] for r in rows], dtype=np.str_),
        ts_ns=np.array([r[1] * S for r in rows], dtype=np.int64),
        values=np.array([r[2:] for r in rows], dtype=np.float64),
        qc_flags=np.zeros(len(rows), dtype=np.uint32),
    )


def flags_of(report_flags: np.ndarray) -> list[QcFlag]:
    return [QcFlag(int(f)) for f in report_flags]


@pytest.fixture
def checker() -> QualityChecker:
    return QualityChecker(FIELDS, AIR_QUALITY.checked_fields)


def test_humidity_soft_and_hard_limits_and_only_pm_is_left_out(checker: QualityChecker) -> None:
    report = checker.check(
        batch([("a", 1, 5, 8, 20, 74.9), ("a", 2, 5, 8, 20, 75.0), ("a", 3, 5, 8, 20, 85.0)])
    )
    assert flags_of(report.flags) == [
        QcFlag(0),
        QcFlag.HUMIDITY_HIGH,
        QcFlag.HUMIDITY_HIGH | QcFlag.HUMIDITY_ARTEFACT,
    ]
    assert report.excluded.tolist() == [
        [False] * 4,
        [False] * 4,
        [True, True, False, False],  # PM2.5 and PM10 out, NO2 and humidity in
    ]


def test_pm25_above_pm10_is_flagged_not_excluded(checker: QualityChecker) -> None:
    report = checker.check(batch([("a", 1, 9.0, 8.0, 20, 50)]))
    assert flags_of(report.flags) == [QcFlag.PM25_ABOVE_PM10]
    assert not report.excluded.any()


def test_robust_z_by_hand() -> None:
    # history 10,11,12 repeating: median 11, |x - 11| median 1, sigma 1.4826
    median, mad = np.array([11.0]), np.array([1.0])
    assert robust_z(np.array([20.0]), median, mad)[0] == pytest.approx(9 / 1.4826)  # 6.07
    assert robust_z(np.array([11.0]), np.array([11.0]), np.array([0.0]))[0] == 0.0
    assert robust_z(np.array([11.5]), np.array([11.0]), np.array([0.0]))[0] == np.inf


def test_a_spike_against_the_devices_recent_median(checker: QualityChecker) -> None:
    history = [10.0, 11.0, 12.0, 10.0, 11.0, 12.0, 10.0, 11.0, 12.0, 10.0]
    rows = [("a", i, v, 30.0 + i, 20.0 + i, 50.0 + i) for i, v in enumerate(history)]
    checker.check(batch(rows))
    # median 11, MAD 1, floored to 15 % of the median: 1.65, so sigma = 1.4826 * 1.65 = 2.446.
    # z = |30 - 11| / 2.446 = 7.77 > 6: spike. z = |25 - 11| / 2.446 = 5.72: not.
    later = [("a", 100, 30.0, 45.0, 35.0, 60.0), ("a", 101, 25.0, 46.0, 36.0, 61.0)]
    report = checker.check(batch(later))
    assert flags_of(report.flags) == [QcFlag.SPIKE, QcFlag(0)]
    assert report.excluded[0].tolist() == [True, False, False, False]  # the spiking field only


def test_no_spike_verdict_before_ten_values(checker: QualityChecker) -> None:
    checker.check(batch([("a", i, 10.0 + i % 2, 30.0 + i, 20.0 + i, 50) for i in range(9)]))
    assert flags_of(checker.check(batch([("a", 50, 500.0, 600.0, 20.0, 50)])).flags) == [QcFlag(0)]


def test_a_flatline_is_the_sixth_identical_value_in_a_row_even_across_batches(
    checker: QualityChecker,
) -> None:
    # NO2 stuck at 7.5: readings 1-5 fine, the 6th and 7th flagged; the others vary.
    first = checker.check(batch([("a", i, 5.0 + i, 10.0 + i, 7.5, 40.0) for i in range(3)]))
    second = checker.check(batch([("a", i, 5.0 + i, 10.0 + i, 7.5, 40.0) for i in range(3, 7)]))
    assert flags_of(first.flags) == [QcFlag(0)] * 3
    assert flags_of(second.flags) == [QcFlag(0), QcFlag(0), QcFlag.FLATLINE, QcFlag.FLATLINE]
    assert second.excluded[2].tolist() == [False, False, True, False]
    third = checker.check(batch([("a", 9, 20.0, 30.0, 7.6, 40.0)]))  # a new value ends the run
    assert flags_of(third.flags) == [QcFlag(0)]


def test_a_gap_ends_a_run(checker: QualityChecker) -> None:
    rows = [("a", i, 5.0 + i, 10.0 + i, 7.5, 40.0) for i in range(5)]
    rows.append(("a", 5, 11.0, 16.0, NAN, 40.0))
    rows.append(("a", 6, 12.0, 17.0, 7.5, 40.0))
    assert QcFlag.FLATLINE not in QcFlag(
        int(np.bitwise_or.reduce(checker.check(batch(rows)).flags))
    )


def test_duplicates_within_a_batch_and_against_earlier_batches(checker: QualityChecker) -> None:
    first = checker.check(
        batch([("a", 10, 1, 2, 3, 40), ("b", 10, 1, 2, 3, 40), ("a", 10, 1, 2, 3, 40)])
    )
    assert flags_of(first.flags) == [QcFlag(0), QcFlag(0), QcFlag.DUPLICATE]
    assert first.excluded[2].all()
    later = checker.check(batch([("b", 10, 1, 2, 3, 40), ("b", 11, 1, 2, 3, 40)]))
    assert flags_of(later.flags) == [QcFlag.DUPLICATE, QcFlag(0)]  # not earlier: the same time


def test_out_of_order_is_earlier_than_what_the_device_already_sent(checker: QualityChecker) -> None:
    first = checker.check(
        batch(
            [
                ("a", 100, 1, 2, 3, 40),
                ("b", 50, 1, 2, 3, 40),
                ("a", 90, 1, 2, 4, 40),
                ("a", 95, 1, 2, 5, 40),
            ]
        )
    )
    assert flags_of(first.flags) == [QcFlag(0), QcFlag(0), QcFlag.OUT_OF_ORDER, QcFlag.OUT_OF_ORDER]
    assert not first.excluded[2:].any()  # late data stays in: windows decide
    second = checker.check(
        batch([("a", 99, 1, 2, 6, 40), ("a", 101, 1, 2, 7, 40), ("b", 51, 1, 2, 8, 40)])
    )
    assert flags_of(second.flags) == [QcFlag.OUT_OF_ORDER, QcFlag(0), QcFlag(0)]


def test_many_devices_keep_their_own_history(checker: QualityChecker) -> None:
    rows = [
        (f"d{i:04d}", t, 10.0 + (t + i) % 3, 30.0 + t, 20.0 - t, 50.0 + t)
        for t in range(12)
        for i in range(300)
    ]
    assert not checker.check(batch(rows)).flags.any()
    later = [(f"d{i:04d}", 100, 500.0 if i == 17 else 11.0, 50.0, 5.0, 70.0) for i in range(300)]
    assert np.flatnonzero(checker.check(batch(later)).flags).tolist() == [17]


def test_flag_counts_name_each_flag() -> None:
    flags = np.array([QcFlag.SPIKE | QcFlag.DUPLICATE, QcFlag.SPIKE, 0], dtype=np.uint32)
    assert count_flags(flags) == {"spike": 2, "duplicate": 1}


@given(
    st.lists(
        st.lists(
            st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=12, max_size=12
        ),
        min_size=1,
        max_size=20,
    )
)
def test_nan_median_gives_numpys_numbers(rows: list[list[float | None]]) -> None:
    values = np.array([[np.nan if v is None else v for v in row] for row in rows])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        expected = np.nanmedian(values, axis=-1)
    np.testing.assert_array_equal(nan_median(values), expected)


def _time_flags_by_hand(
    batches: list[list[tuple[str, int]]], remembered: int
) -> list[list[tuple[bool, bool]]]:
    """(out of order, duplicate) per reading, a reading at a time: out of order when earlier
    than its device's latest time so far; duplicate when its device sent that time earlier
    in the batch or among the ``remembered`` times it sent last before the batch."""
    latest: dict[str, int] = {}
    sent: dict[str, list[int]] = {}
    verdicts = []
    for rows in batches:
        before = {device: times[-remembered:] for device, times in sent.items()}
        in_batch: dict[str, set[int]] = {}
        out = []
        for device, second in rows:
            late = device in latest and second < latest[device]
            again = second in in_batch.get(device, set()) or second in before.get(device, [])
            out.append((late, again))
            latest[device] = max(latest.get(device, second), second)
            in_batch.setdefault(device, set()).add(second)
            sent.setdefault(device, []).append(second)
        verdicts.append(out)
    return verdicts


streams = st.lists(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 90))
        | st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 400)),
        min_size=1,
        max_size=90,
    ).map(lambda rows: sorted(rows, key=lambda r: r[1]) if len(rows) % 3 == 0 else rows),
    min_size=1,
    max_size=5,
)


@given(streams)
def test_out_of_order_and_duplicates_are_as_worked_out_a_reading_at_a_time(
    batches: list[list[tuple[str, int]]],
) -> None:
    """Batches in order (which take a shorter way) and out of it, against a plain model."""
    checker = QualityChecker(FIELDS, AIR_QUALITY.checked_fields)
    expected = _time_flags_by_hand(batches, checker.rules.seen_timestamps)
    for rows, verdicts in zip(batches, expected, strict=True):
        report = checker.check(batch([(device, second, 5, 8, 20, 50) for device, second in rows]))
        got = [(bool(f & QcFlag.OUT_OF_ORDER), bool(f & QcFlag.DUPLICATE)) for f in report.flags]
        assert got == verdicts
