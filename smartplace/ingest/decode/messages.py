"""MQTT messages in, validated readings as columns (and rejects with reasons) out.

Routing by topic picks the input format; each format turns its payload into
candidate readings; every candidate is validated by the same pydantic model
whatever its format. Native readings first pass the screen
(ingest/decode/screen.py), which takes the ones it can prove that model would
accept, as columns, without building a candidate each. No I/O and no clocks
(arrival times come with the messages). A bad message, or a bad part of one,
becomes a Reject: decoding never raises and never spoils the rest of the
batch. A message that makes decoding itself fail (a bug) becomes an
``internal_error`` reject of its own (ingest/decode/failures.py), whichever pass
it fails in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import TypeAdapter, ValidationError

from smartplace.config import IngestSettings
from smartplace.devices.directory import DeviceDirectory
from smartplace.devices.model import DeviceRecord
from smartplace.ingest.decode.columns import FloatArray, ReadingColumns
from smartplace.ingest.decode.failures import internal_error
from smartplace.ingest.decode.flags import QcFlag
from smartplace.ingest.decode.screen import screen_for, screen_rows
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas import DEVICE_ID_RE, KINDS, DeviceStatusReading, Reading
from smartplace.schemas.candidate import Candidate, Decoded, Refusal, join_path
from smartplace.schemas.chirpstack import chirpstack_candidates
from smartplace.schemas.chirpstack import topic_device_id as chirpstack_device
from smartplace.schemas.native import native_candidates, native_item
from smartplace.schemas.reading import NS_PER_S, field_layout
from smartplace.schemas.reasons import Reject, RejectReason, excerpt, reason_for
from smartplace.schemas.senml import senml_candidates
from smartplace.schemas.topics import LORAWAN_LEAVES, Topic, parse_topic
from smartplace.schemas.ttn import TtnState, ttn_candidates

log = logging.getLogger(__name__)

_TIMESTAMP_MISSING = int(QcFlag.TIMESTAMP_MISSING)


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
            max_future_ns=int(ingest.max_future_s * NS_PER_S),
            max_age_ns=int(ingest.max_age_s * NS_PER_S),
            require_registered=ingest.require_registered_devices,
        )


@dataclass(slots=True)
class _Group:
    """The batch's candidates of one (model, kind), with where each came from."""

    candidates: list[Candidate] = field(default_factory=list)
    origins: list[_Origin] = field(default_factory=list)
    order: list[int] = field(default_factory=list)
    """Each candidate's place in the batch, so its reject (if any) keeps arrival order."""
    screened: _Screened | None = None
    """Rows the screen took without pydantic (see ingest/decode/screen.py)."""


@dataclass(slots=True)
class _Origin:
    """The message a reading came in, and what the topic and registry say of its device.
    One is made per message, and a frozen one took four times as long to make: nothing
    changes it once made."""

    message: RawMessage
    device_id: str
    site: str


@dataclass(slots=True)
class _Queue:
    """The batch's native readings of one model, waiting for the screen: the readings in
    one list, and per message where they came from (rows follow with np.repeat)."""

    items: list[Any] = field(default_factory=list)
    origins: list[_Origin] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    first_places: list[int] = field(default_factory=list)
    arrays: list[bool] = field(default_factory=list)
    """Whether the payload was an array (its items have paths [i]) or one object."""


@dataclass(frozen=True, slots=True)
class _Screened:
    """The rows the screen took, as the columns _accept_group makes, with their places."""

    columns: dict[str, npt.NDArray[Any]]
    places: npt.NDArray[np.int64]


@dataclass(slots=True)
class _Rejects:
    """Rejects tagged with their place in the batch: validation runs a model at a time,
    but the batch's rejects come out in arrival order."""

    tagged: list[tuple[int, Reject]] = field(default_factory=list)
    counter: int = 0

    def next_place(self) -> int:
        self.counter += 1
        return self.counter

    def add(self, place: int, reject: Reject) -> None:
        self.tagged.append((place, reject))

    def in_order(self) -> list[Reject]:
        return [reject for _place, reject in sorted(self.tagged, key=lambda pair: pair[0])]


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

    Passes: each message to candidates or rejects, its native readings queued
    by model; each model's queue through the screen in one pass (what it
    cannot vouch for becomes candidates); each model's candidates validated
    together, in one pydantic call; the valid ones checked against their
    arrival and turned into columns, merged with the screened rows in arrival
    order. Per-reading Python is what limits ingest's rate, so the
    per-reading work is batched.
    """
    directory = directory if directory is not None else DeviceDirectory()
    ttn = ttn if ttn is not None else TtnState(devices=directory.devices)
    batch = DecodedBatch(columns=[], rejects=[])
    rejects = _Rejects()
    groups: dict[tuple[type[Reading], str], _Group] = {}
    queues: dict[tuple[type[Reading], str], _Queue] = {}
    for message in messages:
        mark = len(rejects.tagged)
        try:
            _decode_message(message, limits, ttn, directory, groups, queues, rejects, batch)
        except Exception as exc:
            # Groups and queues are touched only by a message's last statements, once all that
            # can raise has run: only its own rejects can be there to take back.
            del rejects.tagged[mark:]
            rejects.add(rejects.next_place(), _internal_error(message, limits, exc))
    batch.columns = _settle_isolating(queues, groups, limits, rejects)
    batch.rejects = rejects.in_order()
    return batch


def _settle(
    queues: dict[tuple[type[Reading], str], _Queue],
    groups: dict[tuple[type[Reading], str], _Group],
    limits: DecodeLimits,
    rejects: _Rejects,
) -> list[ReadingColumns]:
    """The batch-wide passes: screen each model's queue, validate and accept each group."""
    for key, queue in queues.items():
        _screen_queue(key, queue, limits, groups, rejects)
    batch_columns = []
    for (model, kind), group in groups.items():
        outcomes = _validate_group(model, [c.values for c in group.candidates])
        columns = _accept_group(model, kind, group, outcomes, limits, rejects)
        if columns is not None:
            batch_columns.append(columns)
    return batch_columns


def _settle_isolating(
    queues: dict[tuple[type[Reading], str], _Queue],
    groups: dict[tuple[type[Reading], str], _Group],
    limits: DecodeLimits,
    rejects: _Rejects,
) -> list[ReadingColumns]:
    """_settle, and should it raise, _settle again a message at a time, so the one that
    makes it raise becomes an internal_error reject and the rest are decoded as usual.

    The passes touch nothing but the batch's own groups and rejects, so taking back
    what a failed pass added to them undoes it: nothing outside the batch has changed.
    """
    lengths = {key: len(group.candidates) for key, group in groups.items()}
    mark = len(rejects.tagged)
    try:
        return _settle(queues, groups, limits, rejects)
    except Exception:
        log.warning("a batch-wide decode pass failed: settling the batch a message at a time")
    del rejects.tagged[mark:]
    for key in list(groups):
        if key not in lengths:
            del groups[key]
    columns: list[ReadingColumns] = []
    for alone in _by_message(queues, groups, lengths):
        mark = len(rejects.tagged)
        try:
            columns.extend(_settle(alone.queues, alone.groups, limits, rejects))
        except Exception as exc:
            del rejects.tagged[mark:]
            rejects.add(alone.place, _internal_error(alone.origin.message, limits, exc))
    return columns


@dataclass(slots=True)
class _Alone:
    """One message's share of the batch's queues and groups, to settle on its own."""

    place: int
    origin: _Origin
    queues: dict[tuple[type[Reading], str], _Queue] = field(default_factory=dict)
    groups: dict[tuple[type[Reading], str], _Group] = field(default_factory=dict)


def _by_message(
    queues: dict[tuple[type[Reading], str], _Queue],
    groups: dict[tuple[type[Reading], str], _Group],
    lengths: dict[tuple[type[Reading], str], int],
) -> list[_Alone]:
    """The batch's queues and groups (as they were before the passes: each group's first
    ``lengths`` candidates) split by the message each entry came from, in arrival order."""
    parts: dict[int, _Alone] = {}  # by the origin's identity: one _Origin per message

    def part(origin: _Origin, place: int) -> _Alone:
        alone = parts.setdefault(id(origin), _Alone(place, origin))
        alone.place = min(alone.place, place)
        return alone

    for key, queue in queues.items():
        start = 0
        for origin, count, first, array in zip(
            queue.origins, queue.counts, queue.first_places, queue.arrays, strict=True
        ):
            items = queue.items[start : start + count]
            part(origin, first).queues[key] = _Queue(items, [origin], [count], [first], [array])
            start += count
    for key, group in groups.items():
        kept = lengths[key]
        for candidate, origin, place in zip(
            group.candidates[:kept], group.origins[:kept], group.order[:kept], strict=True
        ):
            alone = part(origin, place).groups.setdefault(key, _Group())
            alone.candidates.append(candidate)
            alone.origins.append(origin)
            alone.order.append(place)
    return sorted(parts.values(), key=lambda alone: alone.place)


def _internal_error(message: RawMessage, limits: DecodeLimits, exc: Exception) -> Reject:
    return internal_error(
        message.topic, message.payload, message.received_ns, limits.topic_prefix, exc
    )


def _bounded(decoded: Decoded, payload: bytes, limit: int) -> Decoded:
    """A format's verdict, or one refusal when a payload makes more readings (and refusals)
    than a payload may: a 256 KiB SenML pack can hold 20,000 records."""
    if len(decoded) <= limit:
        return decoded
    detail = f"{len(decoded)} readings, limit {limit}"
    return [Refusal(RejectReason.BATCH_TOO_LONG, detail, payload)]


@dataclass(frozen=True, slots=True)
class _TopicRoute:
    """What a topic alone says of its messages: worked out once per topic string."""

    topic: Topic | None
    """None when the topic follows no scheme or names no valid device id (then refused)."""
    refusal: tuple[RejectReason, str] | None
    """Why every message on this topic is refused before its payload is read, if it is."""
    model: type[Reading] | None


@lru_cache(maxsize=8192)
def _topic_route(prefix: str, topic_name: str) -> _TopicRoute:
    """The topic parsed and its device id and kind checked, in the order messages are judged.

    Devices publish on the same few topics, so each is judged once; the bound keeps odd
    topics from growing the cache."""
    topic = parse_topic(prefix, topic_name)
    if topic is None:
        return _TopicRoute(None, (RejectReason.UNKNOWN_TOPIC, "not a smartplace topic"), None)
    if not DEVICE_ID_RE.fullmatch(topic.device_id):
        detail = "topic's device id does not match the pattern"
        return _TopicRoute(None, (RejectReason.BAD_DEVICE_ID, detail), None)
    spec = KINDS.get(topic.kind)
    model = spec.model if spec is not None else None
    if model is None and topic.leaf not in LORAWAN_LEAVES and topic.leaf != "registry":
        detail = f"kind must be one of {', '.join(KINDS)}"
        return _TopicRoute(topic, (RejectReason.UNKNOWN_KIND, detail), None)
    return _TopicRoute(topic, None, model)


def _reject(
    rejects: _Rejects,
    message: RawMessage,
    reason: RejectReason,
    detail: str,
    device_id: str | None,
    source: bytes,
) -> None:
    """A reject of a whole message, at the next place in the batch."""
    reject = Reject(reason, detail, message.topic, device_id, excerpt(source), message.received_ns)
    rejects.add(rejects.next_place(), reject)


def _decode_message(
    message: RawMessage,
    limits: DecodeLimits,
    ttn: TtnState,
    directory: DeviceDirectory,
    groups: dict[tuple[type[Reading], str], _Group],
    queues: dict[tuple[type[Reading], str], _Queue],
    rejects: _Rejects,
    batch: DecodedBatch,
) -> None:
    payload = message.payload
    route = _topic_route(limits.topic_prefix, message.topic)
    topic = route.topic
    if route.refusal is not None:
        reason, detail = route.refusal
        device_id = topic.device_id if topic is not None else None
        _reject(rejects, message, reason, detail, device_id, payload)
        return
    assert topic is not None  # a route without a topic carries a refusal
    device_id = topic.device_id
    if topic.leaf == "chirpstack":  # the topic names a DevEUI: the registry says whose
        device_id = chirpstack_device(
            device_id, payload, directory.devices, limits.max_payload_bytes
        )
    if topic.leaf == "registry":
        try:
            record = directory.apply(device_id, payload)
        except ValueError as exc:
            detail = f"registry message: {exc}"
            _reject(rejects, message, RejectReason.WRONG_SHAPE, detail, device_id, payload)
            return
        if record is not None:
            batch.registry_updates.append((record, message.received_ns))
        return
    model = route.model
    device = directory.get(device_id)
    if device is None and limits.require_registered:
        detail = "the registry does not list this device: add it with 'smartplace devices add'"
        _reject(rejects, message, RejectReason.UNKNOWN_DEVICE, detail, device_id, payload)
        return
    if device is not None and device.status == "retired":
        detail = "the registry lists this device as retired"
        _reject(rejects, message, RejectReason.RETIRED_DEVICE, detail, device_id, payload)
        return
    if device is not None and topic.leaf not in LORAWAN_LEAVES and device.kind != topic.kind:
        detail = f"registered as {device.kind}, the topic says {topic.kind}"
        _reject(rejects, message, RejectReason.TOPIC_DEVICE_MISMATCH, detail, device_id, payload)
        return
    site = (device.site or "") if device is not None else ""
    if len(payload) > limits.max_payload_bytes:
        detail = f"{len(payload)} bytes, limit {limits.max_payload_bytes}"
        _reject(rejects, message, RejectReason.PAYLOAD_TOO_LARGE, detail, device_id, payload)
        return
    try:
        document: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        # orjson refuses numbers that overflow a double (1e999): a numeric fault, not bad JSON.
        reason = RejectReason.NOT_FINITE if "infinity" in str(exc) else RejectReason.MALFORMED_JSON
        _reject(rejects, message, reason, str(exc)[:200], device_id, payload)
        return

    origin = _Origin(message, device_id, site)
    ttn.arrival_ns = message.received_ns
    if topic.leaf == "ttn":
        decoded = ttn_candidates(document, payload, topic.application, ttn, device_id)
        _route(_bounded(decoded, payload, limits.max_readings_per_payload), origin, groups, rejects)
    elif topic.leaf == "chirpstack":
        decoded = chirpstack_candidates(
            document, payload, topic.application, topic.device_id, device_id, ttn
        )
        _route(_bounded(decoded, payload, limits.max_readings_per_payload), origin, groups, rejects)
    elif model is None:  # only LoRaWAN topics name no kind
        return
    elif topic.leaf == "reading" and (
        isinstance(document, dict)
        or (isinstance(document, list) and 0 < len(document) <= limits.max_readings_per_payload)
    ):
        if screen_for(model) is None:
            decoded = native_candidates(
                document, payload, model, topic.kind, limits.max_readings_per_payload
            )
            _route(decoded, origin, groups, rejects)
            return
        queue = queues.get((model, topic.kind))
        if queue is None:
            queue = queues[model, topic.kind] = _Queue()
        array = isinstance(document, list)
        count = len(document) if array else 1
        if array:
            queue.items.extend(document)
        else:
            queue.items.append(document)
        queue.origins.append(origin)
        queue.counts.append(count)
        queue.first_places.append(rejects.counter + 1)
        queue.arrays.append(array)
        rejects.counter += count  # a place per reading, whichever way it goes
    elif topic.leaf in ("reading", "status"):
        decoded = native_candidates(
            document,
            payload,
            model if topic.leaf == "reading" else DeviceStatusReading,
            topic.kind,
            limits.max_readings_per_payload,
        )
        _route(decoded, origin, groups, rejects)
    else:  # senml
        decoded = senml_candidates(
            document,
            payload,
            model,
            topic.kind,
            message.received_ns,
            limits.max_readings_per_payload,
        )
        _route(_bounded(decoded, payload, limits.max_readings_per_payload), origin, groups, rejects)


def _route(
    decoded: Decoded,
    origin: _Origin,
    groups: dict[tuple[type[Reading], str], _Group],
    rejects: _Rejects,
    place: int | None = None,
) -> None:
    """A format's candidates to their model's group, its refusals to the rejects."""
    message = origin.message
    for item in decoded:
        at = place if place is not None else rejects.next_place()
        if isinstance(item, Refusal):
            reject = Reject(
                item.reason,
                item.detail,
                message.topic,
                origin.device_id,
                excerpt(item.source),
                message.received_ns,
                item.path,
            )
            rejects.add(at, reject)
            continue
        group = groups.get((item.model, item.kind))
        if group is None:
            group = groups[item.model, item.kind] = _Group()
        group.candidates.append(item)
        group.origins.append(origin)
        group.order.append(at)


def _screen_queue(
    key: tuple[type[Reading], str],
    queue: _Queue,
    limits: DecodeLimits,
    groups: dict[tuple[type[Reading], str], _Group],
    rejects: _Rejects,
) -> None:
    """The screen takes what it can of a model's queued readings, in one pass; the rest go
    the ordinary way, each with the place in the batch it arrived at."""
    model, kind = key
    screen = screen_for(model)
    assert screen is not None  # only screened models are queued
    origins = queue.origins
    counts = np.array(queue.counts, dtype=np.int64)
    message_of = np.repeat(np.arange(len(origins)), counts)  # each reading's message
    index_in_message = np.arange(len(message_of)) - np.repeat(np.cumsum(counts) - counts, counts)
    places = np.array(queue.first_places, dtype=np.int64)[message_of] + index_in_message
    received = np.array([o.message.received_ns for o in origins], dtype=np.int64)[message_of]
    device_ids = np.array([o.device_id for o in origins], dtype=np.str_)[message_of]
    screened = screen_rows(
        queue.items,
        screen,
        device_ids,
        received - limits.max_age_ns,
        received + limits.max_future_ns,
    )
    rest: Sequence[int] = range(len(queue.items))
    if screened is not None:
        rows = screened.rows
        sites = np.array([o.site for o in origins], dtype=np.str_)[message_of[rows]]
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group()
        columns = {
            "device_ids": device_ids[rows],
            "ts_ns": screened.ts_ns,
            "values": screened.values,
            "qc_flags": np.zeros(len(rows), dtype=np.uint32),
            "sites": sites,
            "received_ns": received[rows],
        }
        group.screened = _Screened(columns, places[rows])
        taken = np.zeros(len(queue.items), dtype=np.bool_)
        taken[rows] = True
        rest = np.flatnonzero(~taken).tolist()
    for row in rest:
        message = int(message_of[row])
        origin, item = origins[message], queue.items[row]
        decoded = (
            native_item(item, int(index_in_message[row]), model, kind)
            if queue.arrays[message]
            else native_candidates(
                item, origin.message.payload, model, kind, limits.max_readings_per_payload
            )
        )
        _route(decoded, origin, groups, rejects, int(places[row]))


def _validate_group(
    model: type[Reading], values: list[dict[str, Any]]
) -> list[Reading | ValidationError]:
    """Each candidate's model instance or its error.

    All in one pydantic call; when some fail, the call's errors name them, and
    only those are validated alone (for their own reason) while the rest go
    through together again.
    """
    if len(values) <= 1:
        return [_validate_one(model, v) for v in values]
    adapter = _list_adapter(model)
    try:
        return list(adapter.validate_python(values))
    except ValidationError as exc:
        failed = {
            location[0]
            for error in exc.errors(include_url=False)
            if (location := error["loc"]) and isinstance(location[0], int)
        }
    passed = [index for index in range(len(values)) if index not in failed]
    readings: list[Reading | ValidationError]
    try:
        readings = list(adapter.validate_python([values[i] for i in passed]))
    except ValidationError:  # each passed once already; should it not now, judge each alone
        readings = [_validate_one(model, values[i]) for i in passed]
    outcomes = dict(zip(passed, readings, strict=True))
    outcomes.update((index, _validate_one(model, values[index])) for index in failed)
    return [outcomes[index] for index in range(len(values))]


def _validate_one(model: type[Reading], values: dict[str, Any]) -> Reading | ValidationError:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        return exc


@cache
def _list_adapter(model: type[Reading]) -> TypeAdapter[list[Reading]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _accept_group(
    model: type[Reading],
    kind: str,
    group: _Group,
    outcomes: list[Reading | ValidationError],
    limits: DecodeLimits,
    rejects: _Rejects,
) -> ReadingColumns | None:
    """The valid readings whose device and time hold up, as columns; the rest as rejects."""
    kept: list[dict[str, Any]] = []
    kept_places: list[int] = []
    device_ids: list[str] = []
    sites: list[str] = []
    ts_ns: list[int] = []
    received: list[int] = []
    flags: list[int] = []
    max_future_ns, max_age_ns = limits.max_future_ns, limits.max_age_ns
    for candidate, outcome, origin, place in zip(
        group.candidates, outcomes, group.origins, group.order, strict=True
    ):
        message, device_id, site = origin.message, origin.device_id, origin.site
        received_ns = message.received_ns
        if isinstance(outcome, ValidationError):
            reason, detail, location = reason_for(outcome)
            path = join_path(candidate.path, location)
        else:
            values = outcome.__dict__
            ts = values["ts"]
            if ts is None:
                ts = candidate.envelope_ts_ns
            if values["device_id"] is not None and values["device_id"] != device_id:
                reason = RejectReason.TOPIC_DEVICE_MISMATCH
                detail = f"payload names {values['device_id']}, topic names {device_id}"
                path = join_path(candidate.path, "device_id")
            elif ts is not None and ts > received_ns + max_future_ns:
                reason = RejectReason.FUTURE_TIMESTAMP
                detail = f"{(ts - received_ns) / NS_PER_S:.0f} s ahead of arrival"
                path = join_path(candidate.path, "ts")
            elif ts is not None and ts < received_ns - max_age_ns:
                reason = RejectReason.STALE_TIMESTAMP
                detail = f"{(received_ns - ts) / NS_PER_S:.0f} s old at arrival"
                path = join_path(candidate.path, "ts")
            else:
                kept.append(values)
                kept_places.append(place)
                device_ids.append(device_id)
                sites.append(site)
                received.append(received_ns)
                if ts is None:
                    ts_ns.append(received_ns)
                    flags.append(_TIMESTAMP_MISSING)
                else:
                    ts_ns.append(ts)
                    flags.append(0)
                continue
        rejects.add(
            place,
            Reject(
                reason,
                detail,
                message.topic,
                device_id,
                excerpt(candidate.source_bytes()),
                received_ns,
                path,
            ),
        )
    screened = group.screened
    if not kept and screened is None:
        return None
    layout = field_layout(model)
    columns: dict[str, npt.NDArray[Any]] = {
        "device_ids": np.array(device_ids, dtype=np.str_),
        "ts_ns": np.array(ts_ns, dtype=np.int64),
        "values": _value_columns(kept, layout.numeric),
        "qc_flags": np.array(flags, dtype=np.uint32),
        "sites": np.array(sites, dtype=np.str_),
        "received_ns": np.array(received, dtype=np.int64),
    }
    if screened is not None:
        columns = _in_arrival_order(columns, np.array(kept_places, dtype=np.int64), screened)
    return ReadingColumns(
        measurement=model.measurement,
        kind=kind,
        fields=layout.numeric,
        field_types=layout.numeric_types,
        # a screened model has no text fields, so there are texts only when nothing was screened
        text_fields=layout.texts,
        texts=_text_columns(kept, layout.texts) if layout.texts else None,
        **columns,
    )


def _in_arrival_order(
    validated: dict[str, npt.NDArray[Any]], places: npt.NDArray[np.int64], screened: _Screened
) -> dict[str, npt.NDArray[Any]]:
    """The validated rows and the screened ones together, as they arrived."""
    if not len(places):
        return screened.columns  # queued, so in arrival order already
    order = np.argsort(np.concatenate([places, screened.places]), kind="stable")
    return {
        name: np.concatenate([column, screened.columns[name]])[order]
        for name, column in validated.items()
    }


def _value_columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> FloatArray:
    """Shape (rows, names): floats, NaN where a reading has None (bools as 0/1).

    A column at a time, and a field no reading in the batch has (most of a
    model's, usually) costs one count: 2.5x faster than one object array.
    """
    out = np.empty((len(rows), len(names)), dtype=np.float64)
    for k, name in enumerate(names):
        column = [row[name] for row in rows]
        missing = column.count(None)
        if not missing:
            out[:, k] = column
        elif missing == len(column):
            out[:, k] = np.nan
        else:
            out[:, k] = [np.nan if value is None else value for value in column]
    return out


def _text_columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> npt.NDArray[np.object_]:
    """Shape (rows, names): str or None."""
    pick = itemgetter(*names)  # a tuple per row, in C (a bare value when there is one name)
    return np.array(list(map(pick, rows)), dtype=object).reshape(len(rows), len(names))
