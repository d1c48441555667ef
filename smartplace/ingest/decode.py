"""MQTT messages in, validated readings as columns (and rejects with reasons) out.

Pure: no I/O, no clocks (the arrival time comes with each message). A bad
message, or a bad element of an array payload, becomes a Reject; it never
raises and never spoils the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from smartplace.config import IngestSettings
from smartplace.ingest.columns import ReadingColumns
from smartplace.ingest.quality import QcFlag
from smartplace.ingest.rejects import Reject, RejectReason, excerpt, reason_for
from smartplace.schemas import DEVICE_ID_RE, READING_MODELS, parse_reading_topic

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One MQTT message as it arrived; ``mid``/``qos`` let the service acknowledge it later."""

    topic: str
    payload: bytes
    received_ns: int
    mid: int = 0
    qos: int = 0


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    topic_prefix: str
    max_payload_bytes: int
    max_readings_per_payload: int
    max_future_ns: int
    max_age_ns: int

    @classmethod
    def from_settings(cls, topic_prefix: str, ingest: IngestSettings) -> DecodeLimits:
        return cls(
            topic_prefix=topic_prefix,
            max_payload_bytes=ingest.max_payload_bytes,
            max_readings_per_payload=ingest.max_readings_per_payload,
            max_future_ns=int(ingest.max_future_s * _NS_PER_S),
            max_age_ns=int(ingest.max_age_s * _NS_PER_S),
        )


@dataclass(slots=True)
class _KindRows:
    device_ids: list[str] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)
    qc_flags: list[int] = field(default_factory=list)
    rows: list[tuple[float, ...]] = field(default_factory=list)


@dataclass(slots=True)
class DecodedBatch:
    columns: dict[str, ReadingColumns]
    """Accepted readings by kind."""
    rejects: list[Reject]

    @property
    def accepted(self) -> int:
        return sum(len(c) for c in self.columns.values())


def decode_messages(messages: Sequence[RawMessage], limits: DecodeLimits) -> DecodedBatch:
    """Decode and validate a micro-batch of messages."""
    by_kind: dict[str, _KindRows] = {}
    rejects: list[Reject] = []
    for message in messages:
        _decode_message(message, limits, by_kind, rejects)
    columns = {kind: _to_columns(kind, rows) for kind, rows in by_kind.items() if rows.ts_ns}
    return DecodedBatch(columns=columns, rejects=rejects)


def _decode_message(
    message: RawMessage, limits: DecodeLimits, by_kind: dict[str, _KindRows], rejects: list[Reject]
) -> None:
    def reject(reason: RejectReason, detail: str, device_id: str | None, payload: bytes) -> None:
        rejects.append(
            Reject(reason, detail, message.topic, device_id, excerpt(payload), message.received_ns)
        )

    payload = message.payload
    topic = parse_reading_topic(limits.topic_prefix, message.topic)
    if topic is None:
        reject(RejectReason.UNKNOWN_TOPIC, "not a reading topic", None, payload)
        return
    if not DEVICE_ID_RE.match(topic.device_id):
        reject(
            RejectReason.BAD_DEVICE_ID,
            "topic's device id does not match the pattern",
            None,
            payload,
        )
        return
    device_id = topic.device_id
    model = READING_MODELS.get(topic.kind)
    if model is None:
        known = ", ".join(READING_MODELS)
        reject(RejectReason.UNKNOWN_KIND, f"kind must be one of {known}", device_id, payload)
        return
    if len(payload) > limits.max_payload_bytes:
        reject(
            RejectReason.PAYLOAD_TOO_LARGE,
            f"{len(payload)} bytes, limit {limits.max_payload_bytes}",
            device_id,
            payload,
        )
        return
    try:
        document: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # orjson refuses numbers that overflow a double (1e999): a numeric fault, not bad JSON.
        reason = RejectReason.NOT_FINITE if "infinity" in str(exc) else RejectReason.MALFORMED_JSON
        reject(reason, str(exc)[:200], device_id, payload)
        return
    items: list[Any]
    if isinstance(document, dict):
        items = [document]
    elif isinstance(document, list) and document:
        items = document
    else:
        reject(
            RejectReason.WRONG_SHAPE,
            "payload must be an object or a non-empty array",
            device_id,
            payload,
        )
        return
    if len(items) > limits.max_readings_per_payload:
        reject(
            RejectReason.BATCH_TOO_LONG,
            f"{len(items)} readings, limit {limits.max_readings_per_payload}",
            device_id,
            payload,
        )
        return

    rows = by_kind.setdefault(topic.kind, _KindRows())
    fields = model.measurement_fields()
    is_batch = len(items) > 1
    for item in items:
        item_payload = orjson.dumps(item) if is_batch else payload
        if not isinstance(item, dict):
            reject(
                RejectReason.WRONG_SHAPE,
                "each reading must be a JSON object",
                device_id,
                item_payload,
            )
            continue
        try:
            reading = model.model_validate(item)
        except ValidationError as exc:
            reason, detail = reason_for(exc)
            reject(reason, detail, device_id, item_payload)
            continue
        if reading.device_id is not None and reading.device_id != device_id:
            reject(
                RejectReason.TOPIC_DEVICE_MISMATCH,
                f"payload names {reading.device_id}, topic names {device_id}",
                device_id,
                item_payload,
            )
            continue
        flags = QcFlag(0)
        if reading.ts is None:
            ts_ns = message.received_ns
            flags |= QcFlag.TIMESTAMP_MISSING
        else:
            ts_ns = reading.ts
            if ts_ns > message.received_ns + limits.max_future_ns:
                ahead_s = (ts_ns - message.received_ns) / _NS_PER_S
                reject(
                    RejectReason.FUTURE_TIMESTAMP,
                    f"{ahead_s:.0f} s ahead of arrival",
                    device_id,
                    item_payload,
                )
                continue
            if ts_ns < message.received_ns - limits.max_age_ns:
                age_s = (message.received_ns - ts_ns) / _NS_PER_S
                reject(
                    RejectReason.STALE_TIMESTAMP,
                    f"{age_s:.0f} s old at arrival",
                    device_id,
                    item_payload,
                )
                continue
        rows.device_ids.append(device_id)
        rows.ts_ns.append(ts_ns)
        rows.qc_flags.append(int(flags))
        rows.rows.append(tuple(_or_nan(getattr(reading, name)) for name in fields))


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _to_columns(kind: str, rows: _KindRows) -> ReadingColumns:
    fields = READING_MODELS[kind].measurement_fields()
    return ReadingColumns(
        kind=kind,
        fields=fields,
        device_ids=np.array(rows.device_ids, dtype=np.str_),
        ts_ns=np.array(rows.ts_ns, dtype=np.int64),
        values=np.array(rows.rows, dtype=np.float64).reshape(len(rows.rows), len(fields)),
        qc_flags=np.array(rows.qc_flags, dtype=np.uint32),
    )
