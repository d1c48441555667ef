"""Running counters of one ingest worker, read by the demo's live view and the logs."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from smartplace.lineprotocol import FieldValue, format_point
from smartplace.storage import INGEST_STATS


@dataclass
class IngestStats:
    received: int = 0
    accepted: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    flagged: Counter[str] = field(default_factory=Counter)
    """Readings per quality flag."""
    late_beyond_grace: int = 0
    raw_points_written: int = 0
    agg_points_written: int = 0
    batches: int = 0
    batches_written: int = 0
    """Batches whose points InfluxDB accepted (or refused for good); equal to batches when idle."""
    write_retries: int = 0
    write_refused_lines: int = 0
    spooled: int = 0
    """Messages made durable in the spool (and so acknowledged to the broker)."""
    redelivered: int = 0
    """Messages the broker sent again that had been processed already: dropped, not counted twice."""
    retained_skipped: int = 0
    """Retained readings the broker handed over at a SUBSCRIBE: old news, acknowledged, not taken."""
    spool_bytes: int = 0
    unwritten_since_ns: int = 0
    """Arrival time of the oldest message not yet in InfluxDB while a write is pending; 0 when none."""
    influx_ok: bool = True
    acknowledging: bool = True
    """False while the spool is full and the broker is left holding the backlog."""
    mqtt_connected: bool = False
    session_expiry_configured_s: int | None = None
    """The session expiry ingest asks the broker for (mqtt.session_expiry_s)."""
    session_expiry_granted_s: int | None = None
    """The one the broker granted at the latest CONNACK; None before the first."""
    lorawan_frames: Counter[str] = field(default_factory=Counter)
    """LoRaWAN uplinks missed (frame counter gaps) and backfilled, since the worker started."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    def record_batch(
        self,
        received: int,
        accepted: int,
        reasons: list[str],
        late: int,
        flags: Counter[str] | None = None,
        redelivered: int = 0,
        lorawan_frames: Counter[str] | None = None,
    ) -> None:
        with self._lock:
            self.redelivered += redelivered
            self.lorawan_frames.update(lorawan_frames or {})
            self.flagged.update(flags or {})
            self.batches += 1
            self.received += received
            self.accepted += accepted
            self.rejected_by_reason.update(reasons)
            self.late_beyond_grace += late

    def session_expiry_short(self) -> bool:
        """The broker keeps our session for less than configured: a longer outage loses data."""
        asked, granted = self.session_expiry_configured_s, self.session_expiry_granted_s
        return asked is not None and granted is not None and granted < asked

    def record_retained_skipped(self, messages: int) -> None:
        with self._lock:
            self.retained_skipped += messages

    def record_spooled(self, messages: int) -> None:
        with self._lock:
            self.spooled += messages

    def record_written(self, raw_points: int, agg_points: int, batch: bool = True) -> None:
        with self._lock:
            self.batches_written += int(batch)
            self.raw_points_written += raw_points
            self.agg_points_written += agg_points

    def reject_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.rejected_by_reason.items()))

    def flag_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.flagged.items()))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "received": self.received,
                "accepted": self.accepted,
                "rejected": self.rejected,
                "late_beyond_grace": self.late_beyond_grace,
                "raw_points_written": self.raw_points_written,
                "agg_points_written": self.agg_points_written,
                "batches": self.batches,
                "batches_written": self.batches_written,
                "write_retries": self.write_retries,
                "write_refused_lines": self.write_refused_lines,
                "spooled": self.spooled,
                "redelivered": self.redelivered,
                "retained_skipped": self.retained_skipped,
                "spool_bytes": self.spool_bytes,
            }

    def oldest_unwritten_age_s(self, now_ns: int) -> float:
        since = self.unwritten_since_ns
        return max(0.0, (now_ns - since) / 1e9) if since else 0.0


def stats_line(worker: str, stats: IngestStats, backlog: int, ts_ns: int) -> str:
    """The worker's counters since it started (monotonic: rates come from their derivative)."""
    fields: dict[str, FieldValue] = {
        **stats.snapshot(),
        "backlog": backlog,
        "oldest_unwritten_age_s": stats.oldest_unwritten_age_s(ts_ns),
        "acknowledging": stats.acknowledging,
    }
    if stats.session_expiry_granted_s is not None:
        fields["session_expiry_granted_s"] = stats.session_expiry_granted_s
        fields["session_expiry_short"] = stats.session_expiry_short()
    fields |= {f"flagged_{name}": count for name, count in stats.flag_snapshot().items()}
    fields |= {f"rejected_{reason}": count for reason, count in stats.reject_snapshot().items()}
    with stats._lock:
        fields |= {f"lorawan_{name}": count for name, count in sorted(stats.lorawan_frames.items())}
    return format_point(INGEST_STATS, {"worker": worker}, fields, ts_ns)
