"""MQTT messages in, validated readings as columns (and rejects with reasons) out.

Routing by topic picks the input format; each format turns its payload into
candidate readings; every candidate is validated by the same pydantic model
whatever its format. No I/O and no clocks (arrival times come with the
messages). A bad message, or a bad part of one, becomes a Reject: decoding
never raises and never spoils the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import orjson
from pydantic import TypeAdapter, ValidationError

from smartplace.config import IngestSettings
from smartplace.devices.directory import DeviceDirectory
from smartplace.devices.model import DeviceRecord
from smartplace.ingest.columns import ReadingColumns
from smartplace.ingest.quality import QcFlag
from smartplace.schemas import DEVICE_ID_RE, READING_MODELS, DeviceStatusReading, Reading
from smartplace.schemas.candidate import Candidate, Decoded, Refusal, join_path
from smartplace.schemas.native import native_candidates
from smartplace.schemas.reading import field_layout
from smartplace.schemas.reasons import Reject, RejectReason, excerpt, reason_for
from smartplace.schemas.senml import senml_candidates
from smartplace.schemas.topics import parse_topic
from smartplace.schemas.ttn import TtnState, ttn_candidates

_NS_PER_S = 1_000_000_000
_NAN = float("nan")


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One MQTT message as it arrived; ``mid``/``qos``/``connection`` let the service
    acknowledge it later, on the connection it came by."""

    topic: str
    payload: bytes
    received_ns: int
    mid: int = 0
    qos: int = 0
    redelivered: bool = False
    """The broker's DUP flag: it sent this before and saw no acknowledgement."""
    connection: int = 0


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    topic_prefix: str
    max_payload_bytes: int
    max_readings_per_payload: int
    max_future_ns: int
    max_age_ns: int
    require_registered: bool = False

    @classmethod
    def from_settings(cls, topic_prefix: str, ingest: IngestSettings) -> DecodeLimits:
        return cls(
            topic_prefix=topic_prefix,
            max_payload_bytes=ingest.max_payload_bytes,
            max_readings_per_payload=ingest.max_readings_per_payload,
            max_future_ns=int(ingest.max_future_s * _NS_PER_S),
            max_age_ns=int(ingest.max_age_s * _NS_PER_S),
            require_registered=ingest.require_registered_devices,
        )


@dataclass(slots=True)
class _Rows:
    """Accepted readings of one (model, kind), row by row until they become columns."""

    device_ids: list[str] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)
    qc_flags: list[int] = field(default_factory=list)
    rows: list[tuple[float, ...]] = field(default_factory=list)
    texts: list[tuple[str | None, ...]] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    received_ns: list[int] = field(default_factory=list)


@dataclass(slots=True)
class DecodedBatch:
    columns: list[ReadingColumns]
    """Accepted readings, one block per (measurement, kind)."""
    rejects: list[Reject]
    registry_updates: list[tuple[DeviceRecord, int]] = field(default_factory=list)
    """Device records learnt from registry messages, with their arrival times."""

    @property
    def accepted(self) -> int:
        return sum(len(c) for c in self.columns)


def decode_messages(
    messages: Sequence[RawMessage],
    limits: DecodeLimits,
    ttn: TtnState | None = None,
    directory: DeviceDirectory | None = None,
) -> DecodedBatch:
    """Decode and validate a micro-batch of messages, in arrival order.

    ``ttn`` carries what LoRaWAN decoding remembers between batches (frames
    seen, counter totals) and ``directory`` the devices learnt from registry
    messages; without them each call starts afresh.
    """
    directory = directory if directory is not None else DeviceDirectory()
    ttn = ttn if ttn is not None else TtnState(devices=directory.devices)
    batch = DecodedBatch(columns=[], rejects=[])
    rows: dict[tuple[type[Reading], str], _Rows] = {}
    for message in messages:
        _decode_message(message, limits, ttn, directory, rows, batch)
    batch.columns = [
        _to_columns(model, kind, block) for (model, kind), block in rows.items() if block.ts_ns
    ]
    return batch


def _decode_message(
    message: RawMessage,
    limits: DecodeLimits,
    ttn: TtnState,
    directory: DeviceDirectory,
    rows: dict[tuple[type[Reading], str], _Rows],
    batch: DecodedBatch,
) -> None:
    payload = message.payload
    rejects = batch.rejects

    def reject(
        reason: RejectReason, detail: str, device_id: str | None, source: bytes, path: str = ""
    ) -> None:
        rejects.append(
            Reject(
                reason, detail, message.topic, device_id, excerpt(source), message.received_ns, path
            )
        )

    topic = parse_topic(limits.topic_prefix, message.topic)
    if topic is None:
        reject(RejectReason.UNKNOWN_TOPIC, "not a smartplace topic", None, payload)
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
    if topic.leaf == "registry":
        try:
            record = directory.apply(device_id, payload)
        except ValueError as exc:
            reject(RejectReason.WRONG_SHAPE, f"registry message: {exc}", device_id, payload)
            return
        if record is not None:
            batch.registry_updates.append((record, message.received_ns))
        return
    model = READING_MODELS.get(topic.kind)
    if model is None and topic.leaf != "ttn":
        reject(
            RejectReason.UNKNOWN_KIND,
            f"kind must be one of {', '.join(READING_MODELS)}",
            device_id,
            payload,
        )
        return
    device = directory.get(device_id)
    if device is None and limits.require_registered:
        detail = "the registry does not list this device: add it with 'smartplace devices add'"
        reject(RejectReason.UNKNOWN_DEVICE, detail, device_id, payload)
        return
    if device is not None and device.status == "retired":
        detail = "the registry lists this device as retired"
        reject(RejectReason.RETIRED_DEVICE, detail, device_id, payload)
        return
    if device is not None and topic.leaf != "ttn" and device.kind != topic.kind:
        detail = f"registered as {device.kind}, the topic says {topic.kind}"
        reject(RejectReason.TOPIC_DEVICE_MISMATCH, detail, device_id, payload)
        return
    site = (device.site or "") if device is not None else ""
    if len(payload) > limits.max_payload_bytes:
        detail = f"{len(payload)} bytes, limit {limits.max_payload_bytes}"
        reject(RejectReason.PAYLOAD_TOO_LARGE, detail, device_id, payload)
        return
    try:
        document: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # orjson refuses numbers that overflow a double (1e999): a numeric fault, not bad JSON.
        reason = RejectReason.NOT_FINITE if "infinity" in str(exc) else RejectReason.MALFORMED_JSON
        reject(reason, str(exc)[:200], device_id, payload)
        return

    decoded: Decoded
    if topic.leaf == "ttn":
        decoded = ttn_candidates(document, payload, topic.application, ttn)
    elif model is None:  # only TTN topics name no kind
        return
    elif topic.leaf == "reading":
        decoded = native_candidates(
            document, payload, model, topic.kind, limits.max_readings_per_payload
        )
    elif topic.leaf == "status":
        decoded = native_candidates(
            document, payload, DeviceStatusReading, topic.kind, limits.max_readings_per_payload
        )
    else:  # senml
        decoded = senml_candidates(document, payload, model, topic.kind, message.received_ns)

    validated = _validate_all(decoded)
    for item, outcome in zip(decoded, validated, strict=True):
        if isinstance(item, Refusal):
            reject(item.reason, item.detail, device_id, item.source, item.path)
        elif isinstance(outcome, ValidationError):
            reason, detail, location = reason_for(outcome)
            reject(reason, detail, device_id, item.source, join_path(item.path, location))
        elif outcome is not None:
            _accept(item, outcome, message, limits, device_id, site, rows, reject)


def _validate_all(decoded: Decoded) -> list[Reading | ValidationError | None]:
    """Each candidate's model instance or its error (None for refusals).

    A run of candidates of one model (a buffered array) is validated in one
    pydantic call; only when that fails is each judged alone, for its reason.
    """
    candidates = [item for item in decoded if isinstance(item, Candidate)]
    models = {c.model for c in candidates}
    if len(candidates) > 1 and len(models) == 1 and len(candidates) == len(decoded):
        try:
            readings = _list_adapter(models.pop()).validate_python([c.values for c in candidates])
            return list(readings)
        except ValidationError:
            pass
    outcomes: list[Reading | ValidationError | None] = []
    for item in decoded:
        if isinstance(item, Refusal):
            outcomes.append(None)
            continue
        try:
            outcomes.append(item.model.model_validate(item.values))
        except ValidationError as exc:
            outcomes.append(exc)
    return outcomes


@cache
def _list_adapter(model: type[Reading]) -> TypeAdapter[list[Reading]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _accept(
    candidate: Candidate,
    reading: Reading,
    message: RawMessage,
    limits: DecodeLimits,
    device_id: str,
    site: str,
    rows: dict[tuple[type[Reading], str], _Rows],
    reject: Any,
) -> None:
    if reading.device_id is not None and reading.device_id != device_id:
        detail = f"payload names {reading.device_id}, topic names {device_id}"
        reject(
            RejectReason.TOPIC_DEVICE_MISMATCH,
            detail,
            device_id,
            candidate.source,
            join_path(candidate.path, "device_id"),
        )
        return
    flags = QcFlag(0)
    ts_ns = reading.ts if reading.ts is not None else candidate.envelope_ts_ns
    if ts_ns is None:
        ts_ns = message.received_ns
        flags |= QcFlag.TIMESTAMP_MISSING
    elif ts_ns > message.received_ns + limits.max_future_ns:
        ahead_s = (ts_ns - message.received_ns) / _NS_PER_S
        reject(
            RejectReason.FUTURE_TIMESTAMP,
            f"{ahead_s:.0f} s ahead of arrival",
            device_id,
            candidate.source,
            join_path(candidate.path, "ts"),
        )
        return
    elif ts_ns < message.received_ns - limits.max_age_ns:
        age_s = (message.received_ns - ts_ns) / _NS_PER_S
        reject(
            RejectReason.STALE_TIMESTAMP,
            f"{age_s:.0f} s old at arrival",
            device_id,
            candidate.source,
            join_path(candidate.path, "ts"),
        )
        return
    block = rows.setdefault((candidate.model, candidate.kind), _Rows())
    block.device_ids.append(device_id)
    block.sites.append(site)
    block.ts_ns.append(ts_ns)
    block.received_ns.append(message.received_ns)
    block.qc_flags.append(int(flags))
    numeric, texts = _split_values(candidate.model, reading)
    block.rows.append(numeric)
    block.texts.append(texts)


def _split_values(
    model: type[Reading], reading: Reading
) -> tuple[tuple[float, ...], tuple[str | None, ...]]:
    layout = field_layout(model)
    values = reading.__dict__
    numeric = tuple(_NAN if (v := values[name]) is None else float(v) for name in layout.numeric)
    return numeric, tuple(values[name] for name in layout.texts)


def _to_columns(model: type[Reading], kind: str, block: _Rows) -> ReadingColumns:
    layout = field_layout(model)
    fields, text_fields = layout.numeric, layout.texts
    n = len(block.ts_ns)
    return ReadingColumns(
        measurement=model.measurement,
        kind=kind,
        fields=fields,
        field_types=layout.numeric_types,
        device_ids=np.array(block.device_ids, dtype=np.str_),
        ts_ns=np.array(block.ts_ns, dtype=np.int64),
        values=np.array(block.rows, dtype=np.float64).reshape(n, len(fields)),
        qc_flags=np.array(block.qc_flags, dtype=np.uint32),
        text_fields=text_fields,
        texts=np.array(block.texts, dtype=object).reshape(n, len(text_fields))
        if text_fields
        else None,
        sites=np.array(block.sites, dtype=np.str_),
        received_ns=np.array(block.received_ns, dtype=np.int64),
    )
