"""The delivery ledger: per device and hour of arrival, what became of its readings.

For each (device, hour in which its messages arrived) it counts readings
received, accepted, rejected (by reason), flagged duplicate, late beyond
grace for their shortest window, and written; for LoRaWAN devices also the
uplinks their frame counters say were missed, and those that came in late. ``smartplace trace`` reads it
back to answer "did this device's 09:15 reading reach InfluxDB, and if not,
why?".

Hours are arrival hours, not event hours: arrival time only moves forward,
so an hour is final once it has passed and its running totals can be
written again and again over the same point (time = the hour's start) and
then forgotten. The totals live in the pipeline state, so a checkpoint and
replay recount them exactly, never twice.

Each point also says how far it has counted: ``through_ns``, the latest arrival
counted, and ``refused_through_ns``, the latest arrival of a reading whose
refusal by InfluxDB is counted (arrival times are distinct and only rise, see
``receive/mqtt_wire.py``). When the saved state is lost, ingest resumes
the open hours from those points before the spool is replayed: what arrived at
or before a point's times is already in it, and is not counted again.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

from smartplace.ingest.decode.slots import device_runs
from smartplace.lineprotocol import FieldValue, Precision, format_point
from smartplace.schemas.reasons import Reject, RejectReason
from smartplace.storage import DELIVERY_LEDGER

HOUR_NS = 3_600 * 1_000_000_000
KEEP_HOURS = 2
"""Hours kept open behind the newest arrival: a replay after a crash reaches back this far."""

Key = tuple[str, int]  # (device id, arrival hour start in ns)

ALWAYS = ("received", "accepted", "written", "duplicate", "late")
"""The totals every ledger point holds, 0 or not."""
TOTALS = frozenset(
    {
        *ALWAYS,
        "missed_frames",
        "backfilled_frames",
        *(f"rejected_{reason.value}" for reason in RejectReason),
    }
)
"""The running totals a ledger point may hold (besides ``rejected``, their sum, and the marks)."""


class DeliveryLedger:
    def __init__(self) -> None:
        self._totals: dict[Key, Counter[str]] = defaultdict(Counter)
        self._touched: set[Key] = set()
        self.through_ns = 0
        """The latest arrival counted."""
        self.refused_through_ns = 0
        """The latest arrival of a reading counted as refused by InfluxDB."""
        self.resumed: dict[Key, tuple[int, int]] = {}
        """Hours taken from InfluxDB's points after a lost state: per (device, hour), the
        arrivals up to which the point had counted readings and refusals."""
        self._resumed_until = 0
        """The latest of the resumed points' ``through_ns``: readings after it are all new."""
        self.resume_pending = False
        """Set on a pipeline started without its saved state: ``resume`` before any batch."""

    def resume(
        self, rows: Iterable[Mapping[str, object]], now_ns: int, since_ns: int | None = None
    ) -> int:
        """The open hours' totals from InfluxDB's ledger points (``device_id``, ``time`` and
        the fields), from ``since_ns`` (by default the hours kept open behind ``now_ns``);
        returns how many were taken. A point without ``through_ns`` (written before ingest
        kept it) cannot say what it counted: its hour starts again. A mark ahead of the
        clock (the clock was set back) is taken as now, so what arrives from now on counts."""
        horizon = resume_horizon(now_ns) if since_ns is None else since_ns
        taken = 0
        for row in rows:
            device, hour, through = (
                row.get("device_id"),
                _int64(row.get("time")),
                _int64(row.get("through_ns")),
            )
            if not isinstance(device, str) or hour is None or through is None:
                continue
            if hour < horizon or hour % HOUR_NS or through < 0:
                continue
            earlier = self.resumed.get((device, hour))
            if earlier is not None and earlier[0] >= through:
                continue  # the same hour twice: the point that counted further holds more
            totals: Counter[str] = Counter()
            for name, value in row.items():
                count = _int64(value)
                if count and name in TOTALS:
                    totals[name] = count
            self._totals[device, hour] = totals
            refused = max(_int64(row.get("refused_through_ns")) or 0, 0)
            through, refused = min(through, now_ns), min(refused, now_ns)
            self.resumed[device, hour] = (through, refused)
            self._resumed_until = max(self._resumed_until, through)
            taken += 1
        self.resume_pending = False
        return taken

    def _resumed_before(self, device: str, hour: int, received_ns: int, refusal: bool) -> bool:
        """Whether InfluxDB's point for this hour, taken at a resume, already counts it."""
        counted = self.resumed.get((device, hour))
        return counted is not None and received_ns <= counted[refusal]

    def count_readings(
        self,
        device_ids: npt.NDArray[np.str_],
        received_ns: npt.NDArray[np.int64],
        duplicate: npt.NDArray[np.bool_],
        late: npt.NDArray[np.bool_],
    ) -> None:
        """Accepted readings (so also written, unless InfluxDB refuses them)."""
        if not len(received_ns):
            return
        hours = received_ns - received_ns % HOUR_NS
        if int(received_ns.min()) <= self._resumed_until:  # a replay after a lost state
            fresh = np.array(
                [
                    not self._resumed_before(d, h, r, refusal=False)
                    for d, h, r in zip(
                        device_ids.tolist(), hours.tolist(), received_ns.tolist(), strict=True
                    )
                ],
                dtype=bool,
            )
            device_ids, hours, duplicate, late = (
                device_ids[fresh],
                hours[fresh],
                duplicate[fresh],
                late[fresh],
            )
        self.through_ns = max(self.through_ns, int(received_ns.max()))
        for name, mask in (("duplicate", duplicate), ("late", late)):
            for device, hour in zip(device_ids[mask].tolist(), hours[mask].tolist(), strict=True):
                self._add(device, hour, name)
        for (device, hour), count in _per_device_hour(device_ids, hours).items():
            totals = self._totals[device, hour]
            totals["received"] += count
            totals["accepted"] += count
            totals["written"] += count
            self._touched.add((device, hour))

    def count_rejects(self, rejects: Iterable[Reject]) -> None:
        """Rejects of a known device; one not even naming a device is only in ingest_rejects."""
        for reject in rejects:
            self.through_ns = max(self.through_ns, reject.received_ns)
            if reject.device_id:
                hour = reject.received_ns - reject.received_ns % HOUR_NS
                if self._resumed_before(reject.device_id, hour, reject.received_ns, False):
                    continue
                self._add(reject.device_id, hour, "received")
                self._add(reject.device_id, hour, f"rejected_{reject.reason.value}")

    def count_frames(self, device_id: str, name: str, count: int, received_ns: int) -> None:
        """LoRaWAN frame-counter facts: ``missed_frames`` (a gap the counters show) or
        ``backfilled_frames`` (frames that came in below the highest counter seen)."""
        hour = received_ns - received_ns % HOUR_NS
        if self._resumed_before(device_id, hour, received_ns, refusal=False):
            return
        self._add(device_id, hour, name, count)

    def count_refused(self, readings: Iterable[tuple[str, int]]) -> None:
        """Readings InfluxDB refused after the pipeline counted them written, each as its
        device and arrival time: counted in the hour the pipeline counted it in."""
        for device, received_ns in readings:
            self.refused_through_ns = max(self.refused_through_ns, received_ns)
            hour = received_ns - received_ns % HOUR_NS
            if self._resumed_before(device, hour, received_ns, refusal=True):
                continue
            self._add(device, hour, "written", -1)
            self._add(device, hour, "rejected_refused_by_database")

    def _add(self, device: str, hour: int, name: str, count: int = 1) -> None:
        self._totals[device, hour][name] += count
        self._touched.add((device, hour))

    def lines(self, now_ns: int, precision: Precision = "ns") -> list[str]:
        """Running totals of every (device, hour) changed since the last call; then forgets
        hours that can no longer change."""
        out = []
        for device, hour in sorted(self._touched):
            totals = self._totals[device, hour]
            fields: dict[str, FieldValue] = dict.fromkeys(ALWAYS, 0)
            fields.update(totals)
            fields["rejected"] = sum(v for k, v in totals.items() if k.startswith("rejected_"))
            fields["through_ns"] = self.through_ns
            fields["refused_through_ns"] = self.refused_through_ns
            tags = {"device_id": device}
            out.append(format_point(DELIVERY_LEDGER, tags, fields, hour, precision))
        self._touched.clear()
        horizon = resume_horizon(now_ns)
        for key in [key for key in self._totals if key[1] < horizon]:
            del self._totals[key]
        for key in [key for key in self.resumed if key[1] < horizon]:
            del self.resumed[key]
        return out


def resume_horizon(now_ns: int) -> int:
    """The oldest hour still open behind ``now_ns``."""
    return now_ns - now_ns % HOUR_NS - KEEP_HOURS * HOUR_NS


def _int64(value: object) -> int | None:
    """The value if it is an integer InfluxDB could have stored (a bool is not one)."""
    if isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < 1 << 63:
        return value
    return None


def _per_device_hour(
    device_ids: npt.NDArray[np.str_], hours: npt.NDArray[np.int64]
) -> Counter[tuple[str, int]]:
    """Readings per (device, arrival hour), in the order each first arrived."""
    runs = device_runs(device_ids)
    if runs is None:
        return Counter(zip(device_ids.tolist(), hours.tolist(), strict=True))
    # Readings side by side (arrays): a count per run of one device and hour, not per reading.
    starts = np.union1d(runs, np.flatnonzero(np.diff(hours)) + 1)
    lengths = np.diff(np.append(starts, len(hours)))
    counts: Counter[tuple[str, int]] = Counter()
    for device, hour, length in zip(
        device_ids[starts].tolist(), hours[starts].tolist(), lengths.tolist(), strict=True
    ):
        counts[device, hour] += length
    return counts
