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
