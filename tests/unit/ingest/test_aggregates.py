"""Footfall and bin windows, with every figure worked out by hand."""

from __future__ import annotations

import numpy as np

from smartplace.ingest.decode.columns import ReadingColumns
from smartplace.ingest.windows.bins import CollectionDetector, collections
from smartplace.ingest.windows.tumbling import WindowAggregator
from smartplace.ingest.write.aggregates import window_lines

S = 1_000_000_000
NAN = float("nan")


def block(
    measurement: str, fields: tuple[str, ...], types: tuple[str, ...], rows: list[tuple]
) -> ReadingColumns:  # type: ignore[type-arg]
    return ReadingColumns(
        measurement=measurement,
        kind=measurement,
        fields=fields,
        field_types=types,  # type: ignore[arg-type]
        device_ids=np.array([r[0] for r in rows], dtype=np.str_),
        ts_ns=np.array([r[1] * S for r in rows], dtype=np.int64),
        values=np.array([r[2:] for r in rows], dtype=np.float64),
        qc_flags=np.zeros(len(rows), dtype=np.uint32),
    )


FOOTFALL = (("count_in", "count_out", "interval_s", "occupancy"), ("int", "int", "int", "int"))


def test_footfall_windows_sum_people_in_and_out_and_the_net_flow() -> None:
    agg = WindowAggregator("footfall", FOOTFALL[0], length_s=900, grace_s=60)
    rows = [("ff-1", 0, 10, 4, 300, 3), ("ff-1", 300, 20, 6, 300, 9), ("ff-1", 600, 5, 15, 300, 2)]
    agg.add(block("footfall", *FOOTFALL, rows), np.ones(3, dtype=bool))
    done = agg.add(
        block("footfall", *FOOTFALL, [("ff-1", 900, 1, 1, 300, 1)]), np.ones(1, dtype=bool)
    )
    assert window_lines(done, {"ff-1": "merseyway"}) == [
        "footfall_15m,device_id=ff-1,site=merseyway "
        "count_in_sum=35i,count_out_sum=25i,net_flow=10i,interval_s_sum=900i,readings=3i,occupancy_max=9i 0"
    ]


BINS = (("fill_pct", "temperature_c", "fire_alarm"), ("float", "float", "bool"))


def bin_block(rows: list[tuple]) -> ReadingColumns:  # type: ignore[type-arg]
    return block("bin", *BINS, rows)


def test_a_rising_bin_gets_a_time_to_full_and_a_collection_is_counted() -> None:
    detector = CollectionDetector()
    agg = WindowAggregator(
        "bin", (*BINS[0], "collected"), length_s=3600, grace_s=60, track_order=True
    )

    def feed(rows: list[tuple]) -> list[str]:  # type: ignore[type-arg]
        marked = detector.mark(bin_block(rows))
        return window_lines(agg.add(marked, np.ones(len(rows), dtype=bool)))

    feed(
        [
            ("bin-1", 0, 20.0, 11.0, 0),
            ("bin-1", 1200, 30.0, 12.0, 0),
            ("bin-1", 2400, 40.0, 14.0, 0),
        ]
    )
    first_hour = feed([("bin-1", 3600, 85.0, 15.0, 0), ("bin-1", 4000, 10.0, 15.5, 0)])
    # Rising 20 -> 40 % over 2400 s = 30 %/h; 60 % to go = 2.0 h.
    assert first_hour == [
        "bin_1h,device_id=bin-1 fill_pct_last=40.0,fill_pct_max=40.0,readings=3i,collections=0i,"
        "time_to_full_h=2.0,temperature_c_max=14.0,fire_alarms=0i 0"
    ]
    second_hour = feed([("bin-1", 7200, 12.0, 16.0, 1)])
    # 85 -> 10 is a collection; the window ends lower than it began, so no time to full.
    assert second_hour == [
        "bin_1h,device_id=bin-1 fill_pct_last=10.0,fill_pct_max=85.0,readings=2i,collections=1i,"
        "temperature_c_max=15.5,fire_alarms=0i 3600000000000"
    ]


def test_collections_by_hand() -> None:
    previous = np.array([90.0, 60.0, 55.0, 30.0, NAN, 20.0])
    fill = np.array([50.0, 21.0, 14.0, 5.0, 0.0, 60.0])
    # falls of 40, 39 (not), 41 (and below 15 from above 50), 25 from 30 (not), first ever, rise
    assert collections(previous, fill).tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_collection_detection_carries_the_last_fill_across_batches() -> None:
    detector = CollectionDetector()
    detector.mark(bin_block([("bin-1", 0, 95.0, NAN, NAN), ("bin-2", 0, 30.0, NAN, NAN)]))
    marked = detector.mark(bin_block([("bin-2", 60, 35.0, NAN, NAN), ("bin-1", 60, 5.0, NAN, NAN)]))
    assert marked.field("collected").tolist() == [0.0, 1.0]
    assert marked.fields[-1] == "collected"
    assert marked.field_types[-1] == "bool"
