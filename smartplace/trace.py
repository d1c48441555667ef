"""``smartplace trace``: what became of one device's readings, read back from InfluxDB.

Three sources answer "did this device's 09:15 reading reach InfluxDB, and if
not, why?": the delivery ledger (per arrival hour: received, rejected by
reason, duplicate, late, written), the raw readings themselves, and the
rejects with the device's id. ``trace`` queries all three; the CLI prints them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from smartplace.errors import SmartplaceError
from smartplace.influx import InfluxClient, quote_identifier
from smartplace.ingest.decode.flags import QcFlag
from smartplace.schemas.device_status import DeviceStatusReading
from smartplace.schemas.kinds import KINDS
from smartplace.storage import DELIVERY_LEDGER, LEDGER_MARKS, REJECTS

NEAR = timedelta(minutes=1)
"""How far from the asked-for time a reading may be and still be 'that' reading."""
EXACT = timedelta(seconds=1)
"""A reading this close to the asked-for time is the one asked for."""
REJECT_SEARCH = timedelta(hours=1)
"""Rejects are stamped with their arrival: look this long after the asked-for time."""

_RELATIVE = re.compile(r"^(\d+)\s*([mhd])$")
_CLOCK = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")


def parse_when(text: str, now: datetime) -> datetime:
    """'2026-11-25T09:15', '2026-11-25 09:15:00+00:00', '09:15' (today) or '90m'/'6h'/'2d' (ago).

    Times without a zone are UTC, as InfluxDB keeps them.
    """
    text = text.strip()
    if match := _RELATIVE.fullmatch(text):
        amount, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        if _CLOCK.fullmatch(text):
            clock = datetime.strptime(text if text.count(":") == 2 else text + ":00", "%H:%M:%S")
            return now.replace(
                hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0
            )
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SmartplaceError(
            f"cannot read the time {text!r}: give an ISO time (2026-11-25T09:15), a time today "
            "(09:15, UTC) or an age (90m, 6h, 2d)"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class LedgerHour:
    hour: datetime
    counts: dict[str, int]

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        return {
            key.removeprefix("rejected_"): count
            for key, count in self.counts.items()
            if key.startswith("rejected_") and count
        }


@dataclass
class Trace:
    device_id: str
    since: datetime
    ledger: list[LedgerHour] = field(default_factory=list)
    readings: list[dict[str, Any]] = field(default_factory=list)
    """Raw readings near the asked-for time (each with 'measurement' and 'flags' added)."""
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def _verdict(self, at: datetime | None) -> str:
        """One sentence: what happened to the reading at ``at`` (or to the device's readings)."""
        closest = (
            min(self.readings, key=lambda r: abs(r["time"] - at))
            if at is not None and self.readings
            else None
        )
        if at is not None and closest is not None and abs(closest["time"] - at) < EXACT:
            return f"Stored: a reading at {closest['time']:%Y-%m-%d %H:%M:%S} UTC{_flags(closest)}."
        if self.rejects:
            reasons = sorted({r["reason"] for r in self.rejects})
            return f"Not stored: ingest rejected it ({', '.join(reasons)}); details below."
        if closest is not None:
            return (
                f"Stored, near that time: the closest reading is at"
                f" {closest['time']:%Y-%m-%d %H:%M:%S} UTC{_flags(closest)}."
            )
        received = sum(h.counts.get("received", 0) for h in self.ledger)
        if at is not None:
            if received:
                return (
                    "Not stored, and no reject names it: the device sent other readings but none"
                    " for that time (check its clock and interval)."
                )
            return (
                "Never reached ingest: nothing from this device arrived then (check the device,"
                " its network and the broker)."
            )
        if not received:
            return f"Nothing from {self.device_id} arrived since {self.since:%Y-%m-%d %H:%M} UTC."
        written = sum(h.counts.get("written", 0) for h in self.ledger)
        return f"{received} readings received since {self.since:%Y-%m-%d %H:%M} UTC; {written} written."

    def verdict(self, at: datetime | None) -> str:
        """What happened to the reading at ``at`` (or to the device's readings), and for a
        LoRaWAN device the uplinks its frame counters say were missed or came in late."""
        missed = sum(h.counts.get("missed_frames", 0) for h in self.ledger)
        backfilled = sum(h.counts.get("backfilled_frames", 0) for h in self.ledger)
        gaps = (
            f" Its LoRaWAN frame counters show {missed} uplinks missed, {backfilled} came in late"
            " (fill a gap with 'smartplace lorawan backfill')."
            if missed or backfilled
            else ""
        )
        return self._verdict(at) + gaps


def trace(
    influx: InfluxClient, device_id: str, since: datetime, at: datetime | None = None
) -> Trace:
    raw_rp = quote_identifier(influx.settings.raw_retention_policy)
    result = Trace(device_id, since)

    def rows(measurement: str, start: datetime, end: datetime | None, extra: str = "") -> list[Any]:
        # Identifiers are quoted and every value is a bound parameter.
        until = " AND time <= $end" if end else ""
        statement = (
            f"SELECT * FROM {raw_rp}.{quote_identifier(measurement)}"  # noqa: S608
            f" WHERE device_id = $device AND time >= $start{until}{extra} ORDER BY time"
        )
        params = {"device": device_id, "start": _ns(start)}
        if end:
            params["end"] = _ns(end)
        return influx.query_rows(statement, params)

    for row in rows(DELIVERY_LEDGER, since, None):
        counts = {
            key: int(value)
            for key, value in row.items()
            if key not in ("time", "device_id", *LEDGER_MARKS) and isinstance(value, int | float)
        }
        result.ledger.append(LedgerHour(_time(row["time"]), counts))
    if at is not None:
        for measurement in _reading_measurements():
            for row in rows(measurement, at - NEAR, at + NEAR):
                reading = {k: v for k, v in row.items() if v is not None}
                reading["time"] = _time(reading["time"])
                reading["measurement"] = measurement
                reading["flags"] = [
                    flag.name.lower()
                    for flag in QcFlag
                    if flag.name and int(reading.get("qc_flags", 0)) & flag
                ]
                result.readings.append(reading)
    reject_start, reject_end = (at - NEAR, at + REJECT_SEARCH) if at else (since, None)
    for row in rows(REJECTS, reject_start, reject_end, " GROUP BY reason"):
        row["time"] = _time(row["time"])
        result.rejects.append(row)
    return result


def _flags(reading: dict[str, Any]) -> str:
    return f", flagged {', '.join(reading['flags'])}" if reading["flags"] else ""


def _reading_measurements() -> list[str]:
    return [spec.model.measurement for spec in KINDS.values()] + [DeviceStatusReading.measurement]


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _time(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)
