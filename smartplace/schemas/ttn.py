"""The Things Stack (TTN v3) uplinks from its MQTT integration: ``v3/{app}@{tenant}/devices/{id}/up``.

From each uplink: the link quality (best RSSI and SNR over the gateways that
heard it) as device status, and the reading, through the device's profile:
``decoded_payload`` when the network server has a payload formatter, else the
raw ``frm_payload`` bytes through the profile's channel table. Empty fields
are left out by TTS (f_cnt 0, f_port, received_at, decoded_payload), so
nothing optional is required. A frame seen twice (same device, session and
f_cnt) is refused as a duplicate.
"""

from __future__ import annotations

import base64
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartplace.devices.model import DeviceRecord
from smartplace.schemas.bin import fill_pct_from_distance
from smartplace.schemas.candidate import Candidate, Decoded, Refusal
from smartplace.schemas.codecs import decode_frame
from smartplace.schemas.device_status import DeviceStatusReading
from smartplace.schemas.footfall import MAX_PEOPLE_PER_S, FootfallReading
from smartplace.schemas.kinds import KINDS
from smartplace.schemas.profiles import Profile, profile_for_model_id, profile_named
from smartplace.schemas.reading import Reading, timestamp_to_ns
from smartplace.schemas.reasons import RejectReason, reason_for

F_CNT_MAX = 2**32 - 1
"""A LoRaWAN frame counter is 32 bits (TTS's f_cnt and ChirpStack's fCnt are uint32): a larger
one is no device's, and would count a gap of more frames than the ledger's integers hold."""
DEDUPLICATION_MEMORY = 100_000
"""Frames remembered for duplicate detection (LoRaWAN retries arrive within seconds)."""
TOTAL_MODULUS = 2**32
"""Counter totals are unsigned 32-bit registers (vs133-decoder.js readUInt32LE)."""
MIN_COUNTER_INTERVAL_NS = 10**9
"""Counter frames closer than this to the last are refused without moving its baseline."""


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EndDeviceIds(_Envelope):
    device_id: str
    dev_eui: str | None = None


class RxMetadata(_Envelope):
    rssi: float | None = None
    channel_rssi: float | None = None
    snr: float | None = None
    time: str | None = None


class VersionIds(_Envelope):
    brand_id: str | None = None
    model_id: str | None = None


class UplinkMessage(_Envelope):
    session_key_id: str | None = None
    f_port: int | None = None
    f_cnt: int = Field(0, ge=0, le=F_CNT_MAX)  # TTS omits a zero frame counter
    frm_payload: str | None = None
    decoded_payload: dict[str, Any] | None = None
    rx_metadata: list[RxMetadata] = []
    received_at: str | None = None
    version_ids: VersionIds | None = None


class TtnUplink(_Envelope):
    end_device_ids: EndDeviceIds
    received_at: str | None = None
    uplink_message: UplinkMessage
    simulated: bool = False


@dataclass
class TtnMemory:
    """TtnState's memory as plain lists, for the checkpoint's state file."""

    seen: list[list[Any]]
    """[device, session, f_cnt] of recent frames (duplicates are refused)."""
    counters: list[list[Any]]
    """[device, ts_ns, {line_N_total_in/out: register}] of each device's last counter frame."""
    highest_f_cnt: list[list[Any]]
    """[state key, session, highest f_cnt seen] (a jump past it is a gap)."""
    wraps: int


@dataclass
class TtnState:
    """What decoding TTN uplinks remembers between messages: frames seen, counter totals."""

    profiles_by_application: Mapping[str, str] = field(default_factory=dict)
    """Application id (without @tenant) -> profile name, for devices TTS does not name a model for."""
    devices: Mapping[str, DeviceRecord] = field(default_factory=dict)
    """The registry as ingest knows it: a device's own profile and parameters come first."""
    profile_override: Profile | None = None
    """Decode every uplink with this profile (``smartplace validate --profile``)."""
    parameters: Mapping[str, float] = field(default_factory=dict)
    """Overrides of the profile's parameters (a bin's depth) for the device being decoded."""
    _seen: OrderedDict[tuple[str, str, int], None] = field(default_factory=OrderedDict)
    _counters: dict[str, _CounterBaseline] = field(default_factory=dict)
    """device -> its last counter frame's totals and time (the topic's device, never the body's)."""
    wraps: int = 0
    """Counter totals seen to wrap past 2**32 (counted across, not taken for a reset)."""
    _highest_f_cnt: OrderedDict[tuple[str, str], int] = field(default_factory=OrderedDict)
    """(state key, session) -> the highest frame counter seen: a jump past it is a gap."""
    arrival_ns: int = 0
    """When the message being decoded arrived: its frame events are of that time."""
    missed_before: int = 0
    """Uplinks the frame counter says were missed just before the one being decoded."""
    _frame_events: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(device, missed_frames | backfilled_frames, count, arrival) since the pipeline took them."""

    def note_frame(self, state_key: str, device_id: str, session: str, f_cnt: int) -> None:
        """Count the uplinks a frame counter jump says were missed, and the late ones that
        arrive below the highest counter seen (backfilled, or delivered out of order)."""
        key = (state_key, session)
        highest = self._highest_f_cnt.get(key)
        self.missed_before = 0
        if highest is None or f_cnt > highest:
            if highest is not None and f_cnt > highest + 1:
                missed = self.missed_before = f_cnt - highest - 1
                self._frame_events.append((device_id, "missed_frames", missed, self.arrival_ns))
            self._highest_f_cnt[key] = f_cnt
            self._highest_f_cnt.move_to_end(key)
            if len(self._highest_f_cnt) > DEDUPLICATION_MEMORY:
                self._highest_f_cnt.popitem(last=False)
        else:
            self._frame_events.append((device_id, "backfilled_frames", 1, self.arrival_ns))

    def take_frame_events(self) -> list[tuple[str, str, int, int]]:
        """(device, missed_frames | backfilled_frames, count, arrival) since the last call."""
        events, self._frame_events = self._frame_events, []
        return events

    def export_memory(self) -> TtnMemory:
        """What must outlive a restart (the checkpoint's state), as plain values."""
        return TtnMemory(
            seen=[list(key) for key in self._seen],
            counters=[[d, b.ts_ns, dict(b.totals)] for d, b in self._counters.items()],
            highest_f_cnt=[[k, session, n] for (k, session), n in self._highest_f_cnt.items()],
            wraps=self.wraps,
        )

    def restore_memory(self, memory: TtnMemory) -> None:
        """Put back what ``export_memory`` gave (already validated by the state's schema)."""
        self._seen.update(((str(d), str(s), int(n)), None) for d, s, n in memory.seen)
        self._counters.update(
            (str(d), _CounterBaseline(int(ts), {k: int(v) for k, v in dict(t).items()}))
            for d, ts, t in memory.counters
        )
        self._highest_f_cnt.update(((str(k), str(s)), int(n)) for k, s, n in memory.highest_f_cnt)
        self.wraps = memory.wraps

    def first_sighting(self, device_id: str, session: str, f_cnt: int) -> bool:
        key = (device_id, session, f_cnt)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > DEDUPLICATION_MEMORY:
            self._seen.popitem(last=False)
        return True


@dataclass
class _CounterBaseline:
    ts_ns: int
    totals: dict[str, int]
    """line_N_total_in/out -> the counter's register at ts_ns."""


def _crossings(total: int, last: int, interval_s: int) -> tuple[int, bool]:
    """People counted since ``last``, and whether the register wrapped.

    A total below the last one either wrapped past 2**32 or was reset (a power
    cycle, a "clear total count" command). A wrap is what it is when the count
    across it is one the counter could have seen in the interval; otherwise it
    was a reset and the count since is the new total.
    """
    if total >= last:
        return total - last, False
    across = total + TOTAL_MODULUS - last
    if across <= MAX_PEOPLE_PER_S * max(interval_s, 1):
        return across, True
    return total, False


def ttn_candidates(
    document: Any,
    payload: bytes,
    application: str,
    state: TtnState,
    topic_device_id: str | None = None,
) -> Decoded:
    """The uplink's status and reading candidates, or refusals that say why.

    ``topic_device_id`` is the device the topic names. What LoRaWAN decoding
    remembers (frames seen, counter baselines) is keyed on it, and an uplink
    whose body names another device is refused before any of that is touched:
    otherwise one device's topic could fill another's duplicate-frame memory
    and counter baseline and have that device's genuine frames refused.
    """
    try:
        uplink = TtnUplink.model_validate(document)
    except ValidationError as exc:
        _reason, detail, location = reason_for(exc)
        return [Refusal(RejectReason.WRONG_SHAPE, f"not a TTS uplink: {detail}", payload, location)]
    message = uplink.uplink_message
    device_id = uplink.end_device_ids.device_id
    if topic_device_id is not None and device_id != topic_device_id:
        return [
            Refusal(
                RejectReason.TOPIC_DEVICE_MISMATCH,
                f"uplink names device {device_id[:64]!r}, the topic names {topic_device_id!r}",
                payload,
                "end_device_ids.device_id",
            )
        ]
    try:
        ts_ns = _uplink_time_ns(uplink)
    except ValueError as exc:
        return [Refusal(RejectReason.BAD_TIMESTAMP, str(exc), payload, "received_at")]
    heard = [m.rssi if m.rssi is not None else m.channel_rssi for m in message.rx_metadata]
    version = message.version_ids
    return uplink_candidates(
        LorawanUplink(
            device_id=device_id,
            state_key=device_id,
            session=message.session_key_id or "",
            f_cnt=message.f_cnt,
            ts_ns=ts_ns,
            rssi=[r for r in heard if r is not None],
            snr=[m.snr for m in message.rx_metadata if m.snr is not None],
            frm_payload=message.frm_payload,
            decoded=message.decoded_payload,
            model_id=version.model_id if version else None,
            application=application.split("@", 1)[0],
            paths=TTS_PATHS,
        ),
        payload,
        state,
    )


@dataclass(frozen=True, slots=True)
class UplinkPaths:
    """Where a network server's uplink keeps each part, for rejects that say where."""

    f_cnt: str
    raw: str
    decoded: str
    envelope: str


TTS_PATHS = UplinkPaths(
    "uplink_message.f_cnt",
    "uplink_message.frm_payload",
    "uplink_message.decoded_payload",
    "uplink_message",
)


@dataclass(frozen=True, slots=True)
class LorawanUplink:
    """One uplink as any network server delivers it, once its envelope is read."""

    device_id: str
    state_key: str
    """What frames seen and counter baselines are remembered by: the topic's device."""
    session: str
    f_cnt: int
    ts_ns: int | None
    rssi: list[float]
    snr: list[float]
    frm_payload: str | None
    """The frame's application payload, base64."""
    decoded: dict[str, Any] | None
    """What the network server's payload formatter (codec) made of it."""
    model_id: str | None
    application: str
    paths: UplinkPaths


def uplink_candidates(uplink: LorawanUplink, payload: bytes, state: TtnState) -> Decoded:
    """Status and reading candidates of an uplink, through its device's profile.

    Whatever the uplink yields, it never yields nothing: an uplink without a
    reading or a status is refused with the reason.
    """
    paths = uplink.paths
    if not state.first_sighting(uplink.state_key, uplink.session, uplink.f_cnt):
        return [
            Refusal(
                RejectReason.DUPLICATE_FRAME,
                f"frame f_cnt={uplink.f_cnt} of session {uplink.session[:64]} seen before",
                payload,
                paths.f_cnt,
            )
        ]
    device_id, ts_ns = uplink.device_id, uplink.ts_ns
    state.note_frame(uplink.state_key, device_id, uplink.session, uplink.f_cnt)
    profile = state.profile_override or _profile_for(uplink, state)
    registered = state.devices.get(device_id)
    kind = profile.kind if profile else registered.kind if registered else "unknown"
    decoded: Decoded = []
    status: dict[str, Any] = {"device_id": device_id}
    if uplink.rssi:
        status["rssi_dbm"] = max(uplink.rssi)
    if uplink.snr:
        status["snr_db"] = max(uplink.snr)

    if profile is not None and registered is not None and registered.kind != profile.kind:
        # As a native topic's kind is checked: the registry says what the device measures.
        detail = (
            f"registered as {registered.kind}, its payload profile {profile.name} gives"
            f" {profile.kind}"
        )
        return [Refusal(RejectReason.TOPIC_DEVICE_MISMATCH, detail, payload, paths.envelope)]
    if profile is None:
        decoded.append(
            Refusal(
                RejectReason.UNKNOWN_PROFILE,
                f"no payload profile for device {device_id} of application {uplink.application}: "
                "register the device with one, or map the application in ingest.ttn_profiles",
                payload,
                paths.envelope,
            )
        )
    else:
        values, path, refusals = _payload_values(uplink, profile, payload)
        decoded.extend(refusals)
        if values:
            for name in DeviceStatusReading.measurement_fields():
                if name in values:
                    status[name] = values.pop(name)
            decoded.extend(
                _kind_candidates(
                    profile, values, path, payload, device_id, uplink.state_key, ts_ns, state
                )
            )
    if len(status) > 1:
        decoded.insert(
            0, Candidate(DeviceStatusReading, kind, status, payload, paths.envelope, ts_ns)
        )
    if not decoded:
        decoded.append(
            Refusal(
                RejectReason.NO_MEASUREMENTS,
                f"uplink f_cnt={uplink.f_cnt} gave no reading and no link quality (a counter's "
                "first frame is only its baseline; attributes and command replies hold none)",
                payload,
                paths.envelope,
            )
        )
    return decoded


def _uplink_time_ns(uplink: TtnUplink) -> int | None:
    """received_at, else the network server's, else the first gateway's (TTS leaves out empties)."""
    message = uplink.uplink_message
    for text in (
        uplink.received_at,
        message.received_at,
        *(m.time for m in message.rx_metadata),
    ):
        if text:
            try:
                return timestamp_to_ns(text)
            except ValueError as exc:  # PydanticCustomError is a ValueError
                raise ValueError(f"unreadable uplink time {text[:40]!r}") from exc
    return None


def _profile_for(uplink: LorawanUplink, state: TtnState) -> Profile | None:
    device = state.devices.get(uplink.device_id)
    if device is not None and device.profile:
        return profile_named(device.profile)
    if uplink.model_id:
        profile = profile_for_model_id(uplink.model_id)
        if profile is not None:
            return profile
    name = state.profiles_by_application.get(uplink.application)
    return profile_named(name) if name else None


def formatter_values(
    decoded: Mapping[str, Any], profile: Profile
) -> tuple[dict[str, Any], list[str]]:
    """A payload formatter's output in our field names, and the fields it lost.

    The Things Stack's device-repository formatters nest a counting line's
    numbers (``line_1: {total_in, total_out, period_in, period_out}``, as
    lorawan-devices vendor/milesight-iot/vs133.js builds them); Milesight's own
    decoders, which ChirpStack runs as its codec, name them flat
    (``line_1_total_in``). Both become the flat names. A text value the
    profile has no meaning for (the vendors' decoders say ``"unknown"``) loses
    only its own field.
    """
    flat: dict[str, Any] = {}
    for key, value in decoded.items():
        if isinstance(value, Mapping):
            for inner, item in value.items():
                if not isinstance(item, Mapping | list):
                    flat[f"{key}_{inner}"] = item
        else:
            flat[key] = value
    values: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in flat.items():
        name = profile.decoded_fields.get(key, key)
        meanings = profile.decoded_values.get(key)
        if meanings is not None and isinstance(value, str):
            if value not in meanings:
                dropped.append(f"{key} has no meaning for {value[:40]!r}")
                continue
            value = meanings[value]
        values[name] = value
    return values, dropped


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return ours is theirs
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)
    return bool(ours == theirs)


def _payload_values(
    uplink: LorawanUplink, profile: Profile, payload: bytes
) -> tuple[dict[str, Any], str, list[Refusal]]:
    """The uplink's values: its raw bytes through the profile when it has them, checked
    against the network server's decoded payload; else the decoded payload alone."""
    paths = uplink.paths
    formatted: dict[str, Any] | None = None
    refusals: list[Refusal] = []
    if uplink.decoded is not None:
        formatted, dropped = formatter_values(uplink.decoded, profile)
        if dropped and not uplink.frm_payload:
            detail = f"decoded payload: {'; '.join(dropped)}"
            refusals.append(
                Refusal(RejectReason.UNDECODABLE_PAYLOAD, detail, payload, paths.decoded)
            )
    if not uplink.frm_payload:
        if formatted is not None:
            return formatted, paths.decoded, refusals
        detail = "uplink has neither a decoded payload nor raw payload bytes"
        return {}, "", [Refusal(RejectReason.MISSING_FIELD, detail, payload, paths.raw)]
    try:
        data = base64.b64decode(uplink.frm_payload, validate=True)
    except ValueError as exc:  # binascii.Error, and non-ASCII text in the base64
        detail = f"raw payload is not base64: {exc}"
        return {}, "", [Refusal(RejectReason.UNDECODABLE_PAYLOAD, detail, payload, paths.raw)]
    frame = decode_frame(data, profile.channels)
    problems = [*frame.dropped, *([frame.error] if frame.error else [])]
    if formatted is not None:
        disagree = [
            f"{name}: bytes say {frame.values[name]!r}, decoded payload {formatted[name]!r}"
            for name in sorted(formatted.keys() & frame.values.keys())
            if not _same(frame.values[name], formatted[name])
        ]
        if disagree:
            detail = (
                f"decoded payload disagrees with the raw bytes through profile {profile.name}: "
                + "; ".join(disagree[:4])
            )
            return {}, "", [Refusal(RejectReason.PAYLOAD_MISMATCH, detail, payload, paths.decoded)]
    if problems:
        # what came before the problem is kept, as the vendor's decoder keeps it
        kept = ", ".join(sorted(frame.values)) or "nothing"
        detail = f"raw payload does not follow profile {profile.name}: {'; '.join(problems)} (kept: {kept})"
        refusals.append(Refusal(RejectReason.UNDECODABLE_PAYLOAD, detail, payload, paths.raw))
    return frame.values, paths.raw, refusals


def _kind_candidates(
    profile: Profile,
    values: dict[str, Any],
    path: str,
    payload: bytes,
    device_id: str,
    state_key: str,
    ts_ns: int | None,
    state: TtnState,
) -> Decoded:
    model: type[Reading] = KINDS[profile.kind].model
    device = state.devices.get(device_id)
    registered = {
        k: float(v)
        for k, v in (device.metadata.items() if device else ())
        if k in profile.parameters and isinstance(v, int | float) and not isinstance(v, bool)
    }
    parameters = {**profile.parameters, **registered, **state.parameters}
    if (
        profile.derive == "bin_fill_from_distance"
        and "fill_pct" not in values
        and "distance_mm" in values
    ):
        distance = values["distance_mm"]
        if isinstance(distance, int | float) and not isinstance(distance, bool):
            values["fill_pct"] = fill_pct_from_distance(
                float(distance), parameters["empty_distance_mm"], parameters["full_distance_mm"]
            )
    if profile.derive == "footfall_from_totals":
        return _footfall_from_totals(
            profile, values, path, payload, device_id, state_key, ts_ns, state
        )
    reading = {name: value for name, value in values.items() if name in model.model_fields}
    if not reading:
        return []
    reading["device_id"] = device_id
    return [Candidate(model, profile.kind, reading, payload, path, ts_ns)]


def _registers(
    values: Mapping[str, Any], what: str, bits: int
) -> tuple[dict[str, int], str | None]:
    """The frame's ``line_N_{what}_{in,out}`` registers that are integers; or, for the first
    one outside ``bits`` bits (a bool is none), why it is refused."""
    found: dict[str, int] = {}
    for line in range(1, 5):
        for way in ("in", "out"):
            value = values.get(name := f"line_{line}_{what}_{way}")
            if isinstance(value, int):
                if isinstance(value, bool) or not 0 <= value < 1 << bits:
                    return {}, f"{name} = {str(value)[:40]} is not a {bits}-bit counter register"
                found[name] = value
    return found, None


def _footfall_from_totals(
    profile: Profile,
    values: dict[str, Any],
    path: str,
    payload: bytes,
    device_id: str,
    state_key: str,
    ts_ns: int | None,
    state: TtnState,
) -> Decoded:
    """A footfall reading from a counter frame: the counted lines' period counts where the
    frame has them, else the rise of their cumulative totals since the device's last frame.

    Every line's totals and every region's count are stored as the counter reported them.
    The first frame of a device is only the baseline (a count needs an interval). A frame
    older than the last, or too close after it, is refused and leaves the baseline as it
    was, so the crossings its totals carry are counted with the next one.
    """
    lines = profile.counted_lines
    ways = ("in", "out")
    # Checked before anything moves the baseline: a total is a 32-bit register, a period
    # count 16 bits.
    totals, odd_total = _registers(values, "total", 32)
    periods, odd_period = _registers(values, "period", 16)
    if odd := odd_total or odd_period:
        return [Refusal(RejectReason.OUT_OF_RANGE, odd, payload, path)]
    counted_totals = [f"line_{line}_total_{way}" for line in lines for way in ways]
    counted_periods = [f"line_{line}_period_{way}" for line in lines for way in ways]
    has_totals = all(name in totals for name in counted_totals)
    has_periods = all(name in periods for name in counted_periods)
    regions = {
        name: values[name]
        for i in range(1, 5)
        if isinstance(values.get(name := f"region_{i}_count"), int)
    }
    if not has_totals and not has_periods:
        if regions:
            return [
                Refusal(
                    RejectReason.NO_MEASUREMENTS,
                    "region counts without line counts: a footfall reading needs counts over "
                    "an interval",
                    payload,
                    path,
                )
            ]
        return []  # a frame of attributes or replies only
    if ts_ns is None:
        return [
            Refusal(
                RejectReason.MISSING_FIELD,
                "a counter frame needs a receive time",
                payload,
                "received_at",
            )
        ]
    previous = state._counters.get(state_key)
    if previous is not None and ts_ns < previous.ts_ns:
        return [
            Refusal(
                RejectReason.OUT_OF_ORDER_FRAME,
                "counter frame older than the last one",
                payload,
                path,
            )
        ]
    if previous is not None and ts_ns - previous.ts_ns < MIN_COUNTER_INTERVAL_NS:
        gap_s = (ts_ns - previous.ts_ns) / 1e9
        fate = (
            "its crossings are counted with the next frame"
            if has_totals
            else "its period counts are not counted (no totals to carry them)"
        )
        return [
            Refusal(
                RejectReason.OUT_OF_ORDER_FRAME,
                f"counter frame {gap_s:.1f} s after the last one: {fate}",
                payload,
                path,
            )
        ]
    baseline = dict(previous.totals) if previous is not None else {}
    state._counters[state_key] = _CounterBaseline(ts_ns, {**baseline, **totals})
    if previous is None:
        return []  # the first frame is the baseline: counts start with the next
    interval_s = round((ts_ns - previous.ts_ns) / 1e9)
    # After uplinks were missed, a frame's period counts are its own report period only;
    # the totals' rise since the baseline covers the missed ones too.
    covers_gap = state.missed_before > 0 and all(
        name in totals and name in baseline for name in counted_totals
    )
    if has_periods and not covers_gap:
        count_in = sum(periods[f"line_{line}_period_in"] for line in lines)
        count_out = sum(periods[f"line_{line}_period_out"] for line in lines)
        if not has_totals:
            # the totals baseline moves on by what the periods counted
            moved = state._counters[state_key].totals
            for line in lines:
                for way in ways:
                    name = f"line_{line}_total_{way}"
                    if name in moved:
                        moved[name] = (moved[name] + periods[f"line_{line}_period_{way}"]) % (
                            TOTAL_MODULUS
                        )
    elif all(name in baseline for name in counted_totals):
        counted = {}
        for name in counted_totals:
            counted[name], wrapped = _crossings(totals[name], baseline[name], interval_s)
            state.wraps += wrapped
        count_in = sum(counted[f"line_{line}_total_in"] for line in lines)
        count_out = sum(counted[f"line_{line}_total_out"] for line in lines)
    else:
        return []  # totals now, periods before: these totals are the new baseline
    reading: dict[str, Any] = {
        "device_id": device_id,
        "count_in": count_in,
        "count_out": count_out,
        "interval_s": interval_s,
        **totals,
        **regions,
    }
    if regions:
        reading["occupancy"] = sum(regions.values())
    return [Candidate(FootfallReading, profile.kind, reading, payload, path, ts_ns)]
