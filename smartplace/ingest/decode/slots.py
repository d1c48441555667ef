"""Small stable integers for device ids, so per-device state can live in numpy arrays."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from smartplace.ingest.decode.columns import IntArray


class DeviceSlots:
    def __init__(self) -> None:
        self._slots: dict[str, int] = {}
        self.names: list[str] = []
        """Device id by slot."""

    @classmethod
    def in_order(cls, names: list[str]) -> DeviceSlots:
        """Slots 0..n-1 for these distinct device ids, in this order (as a saved state lists them)."""
        slots = cls()
        slots.names = list(names)
        slots._slots = {name: slot for slot, name in enumerate(names)}
        return slots

    def __len__(self) -> int:
        return len(self.names)

    def of(self, device_ids: npt.NDArray[np.str_]) -> IntArray:
        """Each reading's device slot, giving new devices the next ones (a loop over distinct devices only)."""
        runs = device_runs(device_ids)
        if runs is None:
            return self._slots_of(device_ids)
        # Sort one id per run, not one per reading.
        lengths = np.diff(np.append(runs, len(device_ids)))
        return np.repeat(self._slots_of(device_ids[runs]), lengths)

    def _slots_of(self, device_ids: npt.NDArray[np.str_]) -> IntArray:
        devices, inverse = np.unique(device_ids, return_inverse=True)
        slots = np.empty(len(devices), dtype=np.int64)
        for i, device in enumerate(devices.tolist()):
            slot = self._slots.get(device)
            if slot is None:
                slot = self._slots[device] = len(self.names)
                self.names.append(device)
            slots[i] = slot
        result: IntArray = slots[inverse]
        return result

    def get(self, device_id: str) -> int | None:
        return self._slots.get(device_id)


_RUNS_WORTH_IT = 4
"""Readings per run of one device, on average, above which sorting runs beats sorting readings."""
_SAMPLE = 64


def device_runs(device_ids: npt.NDArray[np.str_]) -> IntArray | None:
    """Where each run of consecutive readings of one device starts, when the readings come
    in runs (arrays put a device's readings side by side); None when they do not (one
    reading per message, devices interleaved), so the caller takes them one by one.

    Finding runs costs a comparison per reading, so a sample decides first."""
    sample = device_ids[:_SAMPLE]
    if len(_run_starts(sample)) * _RUNS_WORTH_IT > len(sample):
        return None
    runs = _run_starts(device_ids)
    return runs if len(runs) * _RUNS_WORTH_IT <= len(device_ids) else None


def _run_starts(device_ids: npt.NDArray[np.str_]) -> IntArray:
    """Where each run of consecutive readings of one device starts."""
    starts: IntArray = np.flatnonzero(np.r_[True, device_ids[1:] != device_ids[:-1]])
    return starts
