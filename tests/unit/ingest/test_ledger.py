"""The delivery ledger: exact counts per device and arrival hour, and hours forgotten once final."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from smartplace.ingest.ledger import HOUR_NS, DeliveryLedger, _per_device_hour
from smartplace.schemas.reasons import Reject, RejectReason

H = 1_795_514_400 * 10**9  # an hour's start


def test_counts_readings_rejects_and_refusals_per_device_and_hour() -> None:
    ledger = DeliveryLedger()
    ledger.count_readings(
        np.array(["a", "a", "b", "a"]),
        np.array([H + 1, H + 2, H + 3, H + HOUR_NS + 5]),
        duplicate=np.array([False, True, False, False]),
        late=np.array([False, False, True, False]),
    )
    ledger.count_rejects(
        [
            Reject(RejectReason.OUT_OF_RANGE, "", "t", "a", "", H + 9),
            Reject(RejectReason.MALFORMED_JSON, "", "t", None, "", H + 9),  # names no device
        ]
    )
    ledger.count_refused([("b", H + 3)])
    through = f"through_ns={H + HOUR_NS + 5}i,refused_through_ns={H + 3}i"
    assert ledger.lines(H + HOUR_NS + 6) == [
        f"delivery_ledger,device_id=a received=3i,accepted=2i,written=2i,duplicate=1i,late=0i,"
        f"rejected_out_of_range=1i,rejected=1i,{through} {H}",
        f"delivery_ledger,device_id=a received=1i,accepted=1i,written=1i,duplicate=0i,late=0i,"
        f"rejected=0i,{through} {H + HOUR_NS}",
        f"delivery_ledger,device_id=b received=1i,accepted=1i,written=0i,duplicate=0i,late=1i,"
        f"rejected_refused_by_database=1i,rejected=1i,{through} {H}",
    ]
    assert ledger.lines(H + HOUR_NS + 7) == []  # nothing changed since


def test_an_hour_is_forgotten_once_it_can_no_longer_change() -> None:
    ledger = DeliveryLedger()
    ledger.count_readings(np.array(["a"]), np.array([H]), np.array([False]), np.array([False]))
    ledger.lines(H + 3 * HOUR_NS)
    ledger.count_readings(
        np.array(["a"]), np.array([H + 3 * HOUR_NS]), np.array([False]), np.array([False])
    )
    (line,) = ledger.lines(H + 3 * HOUR_NS)
    assert line.endswith(f" {H + 3 * HOUR_NS}")
    assert len(ledger._totals) == 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "aq-0001", "\u00e9"]), st.integers(1, 120), st.booleans()
        ),
        min_size=1,
        max_size=10,
    )
)
def test_counts_per_device_and_hour_are_the_same_by_runs(runs: list[tuple[str, int, bool]]) -> None:
    """Readings side by side (arrays) are counted a run at a time: the same counts, in the
    same order, as reading by reading."""
    devices, hours, hour = [], [], 5 * HOUR_NS
    for device, length, next_hour in runs:
        for index in range(length):
            if next_hour and index == length // 2:
                hour += HOUR_NS  # an hour ends inside a run
            devices.append(device)
            hours.append(hour)
    device_ids, hours_ns = np.array(devices), np.array(hours, dtype=np.int64)
    counted = _per_device_hour(device_ids, hours_ns)
    expected = Counter(zip(devices, hours, strict=True))
    assert list(counted.items()) == list(expected.items())


def test_a_resumed_hour_counts_only_what_arrived_after_its_point() -> None:
    ledger = DeliveryLedger()
    taken = ledger.resume(
        [
            {
                "device_id": "a",
                "time": H,
                "received": 5,
                "accepted": 4,
                "written": 4,
                "rejected_out_of_range": 1,
                "rejected": 1,
                "duplicate": 0,
                "late": 0,
                "through_ns": H + 50,
                "refused_through_ns": H + 20,
            },
            {"device_id": "b", "time": H, "received": 9, "written": 9},  # no through_ns
            {"device_id": "c", "time": H - 3 * HOUR_NS, "received": 1, "through_ns": 1},
        ],
        H + 100,
    )
    assert taken == 1
    # The replay brings readings at and before the point's mark (counted) and after it (not).
    ledger.count_readings(
        np.array(["a", "a", "a", "b"]),
        np.array([H + 40, H + 50, H + 60, H + 45]),
        duplicate=np.zeros(4, dtype=bool),
        late=np.zeros(4, dtype=bool),
    )
    ledger.count_rejects([Reject(RejectReason.OUT_OF_RANGE, "", "t", "a", "", H + 30)])
    ledger.count_refused([("a", H + 10), ("a", H + 40)])  # the first was in the point
    totals = {key: dict(counts) for key, counts in ledger._totals.items()}
    assert totals == {
        ("a", H): {
            "received": 6,
            "accepted": 5,
            "written": 4,
            "rejected_out_of_range": 1,
            "rejected_refused_by_database": 1,
        },
        ("b", H): {"received": 1, "accepted": 1, "written": 1},
    }
    assert (ledger.through_ns, ledger.refused_through_ns) == (H + 60, H + 40)


def _accept(ledger: DeliveryLedger, devices: list[str], received_ns: list[int]) -> None:
    none = np.zeros(len(devices), dtype=bool)
    ledger.count_readings(np.array(devices), np.array(received_ns), duplicate=none, late=none)


def _point(device: str, hour: int, through: object, **totals: object) -> dict[str, object]:
    return {"device_id": device, "time": hour, "through_ns": through, **totals}


def test_a_resumed_mark_ahead_of_the_clock_is_taken_as_now() -> None:
    """The clock was set back across the restart: what arrives from now on is new."""
    ledger = DeliveryLedger()
    assert ledger.resume([_point("a", H, H + 40 * 60 * 10**9, received=5, written=5)], H + 100)
    _accept(ledger, ["a", "a"], [H + 100, H + 101])
    assert ledger._totals["a", H] == {"received": 6, "accepted": 1, "written": 6}


def test_frame_counter_facts_of_a_resumed_hour_are_not_counted_twice() -> None:
    ledger = DeliveryLedger()
    ledger.resume([_point("a", H, H + 50, missed_frames=3)], H + 100)
    ledger.count_frames("a", "missed_frames", 3, H + 50)  # the replay: already in the point
    assert ledger._totals["a", H] == {"missed_frames": 3}
    ledger.count_frames("a", "missed_frames", 2, H + 60)
    assert ledger._totals["a", H] == {"missed_frames": 5}


def test_a_resume_reaches_as_far_back_as_it_is_told() -> None:
    """The spool's replay may reach hours older than those kept open behind now."""
    old = H - 5 * HOUR_NS
    rows = [_point("a", old, old + 50, received=7, written=7)]
    assert DeliveryLedger().resume(rows, H) == 0
    ledger = DeliveryLedger()
    assert ledger.resume(rows, H, since_ns=old) == 1
    _accept(ledger, ["a", "a"], [old + 50, old + 51])
    assert ledger._totals["a", old] == {"received": 8, "accepted": 1, "written": 8}


def test_resume_rows_influxdb_could_not_hold_are_passed_over() -> None:
    ledger = DeliveryLedger()
    rows = [
        _point("a", H, True, received=1),  # a bool is not a mark
        _point("b", H, 2**63, received=1),
        _point("c", H, -5, received=1),
        _point("d", H, H + 5, received=2**64),  # that total is dropped, the point kept
        _point("e", H, H + 5, received=1),
        _point("e", H, H + 9, received=4),  # the same hour twice: the one counted further
        _point("e", H, H + 7, received=3),
    ]
    assert ledger.resume(rows, H + 100) == 3
    assert dict(ledger._totals) == {("d", H): Counter(), ("e", H): Counter({"received": 4})}
    assert ledger.resumed == {("d", H): (H + 5, 0), ("e", H): (H + 9, 0)}
