"""Device slots: the same slots whether a batch's readings are taken one by one or by runs."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from smartplace.ingest.decode.slots import DeviceSlots

ids = st.sampled_from(["aq-0001", "aq-0002", "aq-0010", "AQ", "b", "aq-0001 ", "\u00e9t\u00e9"])
runs = st.lists(st.tuples(ids, st.integers(1, 150)), min_size=1, max_size=12)


@given(st.lists(runs, min_size=1, max_size=4))
def test_slots_by_runs_are_the_slots_reading_by_reading(
    batches: list[list[tuple[str, int]]],
) -> None:
    by_runs, one_by_one = DeviceSlots(), DeviceSlots()
    for batch in batches:
        device_ids = np.array([device for device, length in batch for _ in range(length)])
        assert by_runs.of(device_ids).tolist() == one_by_one._slots_of(device_ids).tolist()
        assert by_runs.names == one_by_one.names


def test_new_devices_take_the_next_slots_in_id_order() -> None:
    slots = DeviceSlots()
    assert slots.of(np.array(["b"] * 100 + ["a"] * 100)).tolist() == [1] * 100 + [0] * 100
    assert slots.of(np.array(["c", "a", "c"])).tolist() == [2, 0, 2]
    assert slots.names == ["a", "b", "c"]
