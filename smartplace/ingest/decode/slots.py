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

    def __len__(self) -> int:
        return len(self.names)

    def of(self, device_ids: npt.NDArray[np.str_]) -> IntArray:
        """Each reading's device slot, giving new devices the next ones (a loop over distinct devices only)."""
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
