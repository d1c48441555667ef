"""A fleet's traffic: readings generated in blocks, faults applied, encoded as messages.

``Traffic.between(start, end)`` returns the messages the fleet sends in
[start, end), in the order it sends them, each with the oracle's record of
the readings it carries (after faults). Calling it for consecutive ranges,
or for one long range, gives the same readings: generators and fault draws
come from per-field random streams consumed in time order.
"""

from __future__ import annotations

import base64
import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import orjson

from smartplace.schemas import reading_topic
from smartplace.simulator.air_quality import AirQualityGenerator
from smartplace.simulator.bins import BinGenerator
from smartplace.simulator.device_status import DeviceStatusGenerator
from smartplace.simulator.faults import LATE_BY, RUN_LENGTH, FaultRates
from smartplace.simulator.fleet import Fleet, SimDevice
from smartplace.simulator.footfall import FootfallGenerator
from smartplace.simulator.streams import stream

FAULTS = tuple(FaultRates.model_fields)
SPIKE = {
    "air_quality": ("pm25_ugm3", 6.0),
    "footfall": ("count_in", 8.0),
    "bin": ("temperature_c", 3.0),
}
IMPOSSIBLE = {
    "air_quality": ("no2_ugm3", 5000.0),
    "footfall": ("count_in", -5),
    "bin": ("fill_pct", 180.0),
}
SENML_UNITS = {"ugm3": "ug/m3", "c": "Cel", "s": "s", "mm": "mm", "dbm": "dBm", "db": "dB"}
SENML_PCT_UNITS = {"humidity_pct": "%RH", "battery_pct": "%EL"}
EM310_EMPTY_MM, EM310_FULL_MM = 1100, 250  # the profile's defaults


@dataclass(slots=True)
class Outgoing:
    topic: str
    payload: bytes
    device_id: str
    records: list[dict[str, Any]] = field(default_factory=list)
    """The oracle's view: each reading this message carries, with the faults applied to it."""


@dataclass
class _DeviceState:
    stuck_left: int = 0
    stuck_values: dict[str, Any] = field(default_factory=dict)
    skew_left: int = 0
    skew_s: int = 0
    silence_left: int = 0
    burst_left: int = 0
    burst: list[dict[str, Any]] = field(default_factory=list)
    burst_records: list[dict[str, Any]] = field(default_factory=list)
    held: list[list[Any]] = field(default_factory=list)
    """Late messages: [messages still to wait for, the message]."""


class _Group:
    """Devices of one kind reporting at one interval: one generator, one fault stream."""

    def __init__(self, kind: str, interval_s: int, devices: list[SimDevice], seed: int) -> None:
        self.kind, self.interval_s, self.devices = kind, interval_s, devices
        ids = [d.device_id for d in devices]
        busyness = [d.site.busyness for d in devices]
        if kind == "air_quality":
            self.generator: Any = AirQualityGenerator(ids, seed, [d.site.roadside for d in devices])
        elif kind == "footfall":
            self.generator = FootfallGenerator(ids, seed, busyness)
        else:
            self.generator = BinGenerator(ids, seed, busyness=busyness)
        self.faults = stream(seed, "faults", kind, str(interval_s))
        self.states = [_DeviceState() for _ in devices]

    def values(self, ts_s: np.ndarray) -> dict[str, np.ndarray]:
        if self.kind == "air_quality":
            return cast(dict[str, np.ndarray], self.generator.block(ts_s))
        return cast(dict[str, np.ndarray], self.generator.block(ts_s, self.interval_s))


class Traffic:
    def __init__(
        self,
        fleet: Fleet,
        prefix: str,
        faults: FaultRates | None = None,
        array_max: int = 1,
        ttn_application: str = "smartplace-sim@ttn",
    ) -> None:
        self.fleet = fleet
        self.prefix = prefix
        self.rates = faults if faults is not None else fleet.faults
        self.array_max = array_max
        """Readings per native message at most (1: one each, as devices send in real time)."""
        self.ttn_application = ttn_application
        self.devices = fleet.members()
        by_group: dict[tuple[str, int], list[SimDevice]] = defaultdict(list)
        for device in self.devices:
            by_group[device.kind, device.interval_s].append(device)
        self._groups = [
            _Group(kind, interval, members, fleet.seed)
            for (kind, interval), members in by_group.items()
        ]
        status_devices = [d for d in self.devices if d.format != "ttn"]
        self._status = (
            DeviceStatusGenerator([d.device_id for d in status_devices], fleet.seed)
            if fleet.status and status_devices
            else None
        )
        self._status_devices = status_devices
        self._f_cnt: dict[str, int] = defaultdict(int)
        self._topics: dict[str, str] = {}

    def flush(self) -> list[Outgoing]:
        """What is still held back at the end of a run: late messages and unfinished bursts."""
        out = []
        for group in self._groups:
            for device, state in zip(group.devices, group.states, strict=True):
                out += [message for _, message in state.held]
                state.held = []
                if state.burst:
                    out.append(
                        self._encode(device, state.burst, state.burst_records, force_array=True)
                    )
                    state.burst, state.burst_records, state.burst_left = [], [], 0
        return out

    # -- the stream ------------------------------------------------------------------

    def between(self, start_s: int, end_s: int) -> list[Outgoing]:
        """Every message the fleet sends for readings timed in [start_s, end_s), in send order."""
        # Hundreds of thousands of small acyclic dicts: the cyclic collector, scanning them
        # again and again, halved the rate for 500 devices (98k -> 220k readings/s without it).
        with _collector_paused():
            return self._between(start_s, end_s)

    def _between(self, start_s: int, end_s: int) -> list[Outgoing]:
        timed: list[tuple[int, int, Outgoing]] = []
        order = 0
        for group in self._groups:
            ts_s = _grid(start_s, end_s, group.interval_s)
            if not len(ts_s):
                continue
            for first_ts, message in self._group_messages(group, ts_s):
                timed.append((first_ts, order, message))
                order += 1
        if self._status is not None and self.fleet.status is not None:
            for first_ts, message in self._status_messages(
                _grid(start_s, end_s, self.fleet.status.interval_s)
            ):
                timed.append((first_ts, order, message))
                order += 1
        timed.sort(key=lambda item: (item[0], item[1]))
        return [message for _, _, message in timed]

    def _group_messages(self, group: _Group, ts_s: np.ndarray) -> list[tuple[int, Outgoing]]:
        values = group.values(ts_s)
        names = list(values)
        columns = {name: values[name].T.tolist() for name in names}  # per device, per time
        draws = group.faults.random((len(ts_s), len(group.devices), len(FAULTS)))
        times = ts_s.tolist()
        out: list[tuple[int, Outgoing]] = []
        for d, device in enumerate(group.devices):
            rows = [
                dict(zip(names, row, strict=True))
                for row in zip(*(columns[n][d] for n in names), strict=True)
            ]
            bodies = [{"ts": ts, **row} for ts, row in zip(times, rows, strict=True)]
            if self.rates.any:
                out += self._faulty(group, d, device, bodies, draws[:, d, :])
                continue
            # Fault-free: the oracle's values are the very rows sent (no copy per reading).
            records = [
                {
                    "device_id": device.device_id,
                    "kind": device.kind,
                    "ts": ts,
                    "values": row,
                    "faults": [],
                    "sent": 1,
                }
                for ts, row in zip(times, rows, strict=True)
            ]
            for chunk in range(0, len(bodies), self.array_max):
                part = bodies[chunk : chunk + self.array_max]
                message = self._encode(device, part, records[chunk : chunk + self.array_max])
                out.append((part[0]["ts"], message))
        return out

    def _faulty(
        self,
        group: _Group,
        d: int,
        device: SimDevice,
        bodies: list[dict[str, Any]],
        draws: np.ndarray,
    ) -> list[tuple[int, Outgoing]]:
        """One device's readings through the fault knobs, in time order (run state carries on)."""
        rates, state, kind = self.rates, group.states[d], group.kind
        u = dict(zip(FAULTS, draws.T.tolist(), strict=True))
        out: list[tuple[int, Outgoing]] = []
        for t, body in enumerate(bodies):
            sent_at = body["ts"]  # the device's own time to send, before any clock skew
            labels: list[str] = []
            if state.stuck_left:
                body.update(state.stuck_values)
                state.stuck_left -= 1
                labels.append("stuck")
            elif u["stuck"][t] < rates.stuck / RUN_LENGTH["stuck"]:
                state.stuck_values = {k: v for k, v in body.items() if k != "ts"}
                state.stuck_left = RUN_LENGTH["stuck"] - 1
                labels.append("stuck")
            if state.skew_left:
                state.skew_left -= 1
                labels.append("clock_skew")
            elif u["clock_skew"][t] < rates.clock_skew / RUN_LENGTH["clock_skew"]:
                # Minutes off, within what ingest takes (it refuses 5 min ahead of arrival).
                state.skew_s = int((u["clock_skew"][t] * 1e9) % 480) - 240 or 60
                state.skew_left = RUN_LENGTH["clock_skew"] - 1
                labels.append("clock_skew")
            if "clock_skew" in labels:
                body["ts"] += state.skew_s
            if u["spike"][t] < rates.spike:
                name, factor = SPIKE[kind]
                body[name] = (
                    round(body[name] * factor, 1) if kind != "footfall" else body[name] * 8 + 50
                )
                labels.append("spike")
            if u["out_of_range"][t] < rates.out_of_range:
                name, impossible = IMPOSSIBLE[kind]
                body[name] = impossible
                labels.append("out_of_range")
            if state.silence_left or u["silence"][t] < rates.silence / RUN_LENGTH["silence"]:
                state.silence_left = (state.silence_left or RUN_LENGTH["silence"]) - 1
                # Never sent: recorded so a test knows the gap is meant.
                out.append(
                    (
                        body["ts"],
                        Outgoing(
                            "",
                            b"",
                            device.device_id,
                            [self._record(device, body, [*labels, "silence"], sent=0)],
                        ),
                    )
                )
                continue
            if state.burst_left or u["burst"][t] < rates.burst / RUN_LENGTH["burst"]:
                state.burst_left = (state.burst_left or RUN_LENGTH["burst"]) - 1
                state.burst.append(body)
                state.burst_records.append(self._record(device, body, [*labels, "burst"]))
                if state.burst_left == 0:
                    message = self._encode(
                        device, state.burst, state.burst_records, force_array=True
                    )
                    out += self._send(state, message, sent_at, u, t)
                    state.burst, state.burst_records = [], []
                continue
            message = self._encode(device, [body], [self._record(device, body, labels)])
            out += self._send(state, message, sent_at, u, t)
        return out

    def _send(
        self, state: _DeviceState, message: Outgoing, ts: int, u: dict[str, list[float]], t: int
    ) -> list[tuple[int, Outgoing]]:
        """Message-level faults, then this device's messages due now (late ones included)."""
        rates, labels = self.rates, []
        if u["malformed"][t] < rates.malformed:
            message.payload = message.payload[: max(1, len(message.payload) // 2)]
            labels.append("malformed")
        if u["wrong_topic"][t] < rates.wrong_topic:
            message.topic = reading_topic(self.prefix, "weather", message.device_id)
            labels.append("wrong_topic")
        copies = 2 if u["duplicate"][t] < rates.duplicate else 1
        if copies == 2:
            labels.append("duplicate")
        for record in message.records:
            record["faults"] += labels
            record["sent"] = copies
        due: list[tuple[int, Outgoing]] = []
        for held in state.held:
            held[0] -= 1
        while state.held and state.held[0][0] <= 0:
            due.append((ts, state.held.pop(0)[1]))
        # The copy carries no records: the oracle holds each reading once, with how often it went.
        copy = [Outgoing(message.topic, message.payload, message.device_id)] if copies == 2 else []
        if u["late"][t] < rates.late:
            for record in message.records:
                record["faults"].append("late")
            low, high = LATE_BY
            wait = low + int(u["late"][t] * 1e9) % (high - low)
            state.held += [[wait, held] for held in [message, *copy]]
            return due
        return [(ts, held) for held in [message, *copy]] + due

    def _status_messages(self, ts_s: np.ndarray) -> list[tuple[int, Outgoing]]:
        assert self._status is not None
        if not len(ts_s):
            return []
        values = self._status.block(ts_s)
        out = []
        for d, device in enumerate(self._status_devices):
            for t, ts in enumerate(ts_s.tolist()):
                body = {"ts": ts, **{name: values[name][t, d].item() for name in values}}
                topic = reading_topic(self.prefix, device.kind, device.device_id, "status")
                record = {
                    "device_id": device.device_id,
                    "kind": "device_status",
                    "ts": ts,
                    "values": {k: v for k, v in body.items() if k != "ts"},
                    "faults": [],
                    "sent": 1,
                }
                out.append((ts, Outgoing(topic, orjson.dumps(body), device.device_id, [record])))
        return out

    # -- records and encodings ---------------------------------------------------------

    @staticmethod
    def _record(
        device: SimDevice, body: dict[str, Any], faults: list[str], sent: int = 1
    ) -> dict[str, Any]:
        return {
            "device_id": device.device_id,
            "kind": device.kind,
            "ts": body["ts"],
            "values": {k: v for k, v in body.items() if k != "ts"},
            "faults": faults,
            "sent": sent,
        }

    def _encode(
        self,
        device: SimDevice,
        bodies: Sequence[dict[str, Any]],
        records: list[dict[str, Any]],
        force_array: bool = False,
    ) -> Outgoing:
        if device.format == "senml":
            topic = reading_topic(self.prefix, device.kind, device.device_id, "senml")
            payload = orjson.dumps(senml_pack(device.device_id, bodies))
        elif device.format == "ttn":
            topic = f"v3/{self.ttn_application}/devices/{device.device_id}/up"
            self._f_cnt[device.device_id] += 1
            uplink = ttn_uplink(
                device.device_id, self.ttn_application, bodies[-1], self._f_cnt[device.device_id]
            )
            payload = orjson.dumps(uplink)
        else:
            topic = self._topics.get(device.device_id) or self._topics.setdefault(
                device.device_id, reading_topic(self.prefix, device.kind, device.device_id)
            )
            payload = orjson.dumps(
                bodies[0] if len(bodies) == 1 and not force_array else list(bodies)
            )
        return Outgoing(topic, payload, device.device_id, records)


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _grid(start_s: int, end_s: int, interval_s: int) -> np.ndarray:
    """Reporting times in [start_s, end_s): every multiple of the interval."""
    first = -(-start_s // interval_s) * interval_s
    return np.arange(first, end_s, interval_s, dtype=np.int64)


def senml_pack(device_id: str, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """RFC 8428 records: base name and time on the first, one record per field and time."""
    base = bodies[0]["ts"]
    pack: list[dict[str, Any]] = []
    for body in bodies:
        for name, value in body.items():
            if name == "ts":
                continue
            record: dict[str, Any] = _senml_value(name, value)
            if body["ts"] != base:
                record["t"] = body["ts"] - base
            pack.append(record)
    pack[0] = {"bn": f"urn:dev:{device_id}:", "bt": base, **pack[0]}
    return pack


def _senml_value(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"n": name, "u": "/", "vb": value}
    if name in SENML_PCT_UNITS:
        return {"n": name.removesuffix("_pct"), "u": SENML_PCT_UNITS[name], "v": value}
    local, _, suffix = name.rpartition("_")
    if suffix == "pct":
        return {"n": local, "u": "%", "v": value}
    if suffix in SENML_UNITS:
        return {"n": local, "u": SENML_UNITS[suffix], "v": value}
    return {"n": name, "u": "count", "v": value}


def ttn_uplink(
    device_id: str, application: str, body: dict[str, Any], f_cnt: int
) -> dict[str, Any]:
    """A TTS v3 uplink from an EM310-UDL in a bin lid: its formatter's decoded payload."""
    distance = EM310_EMPTY_MM - body["fill_pct"] / 100 * (EM310_EMPTY_MM - EM310_FULL_MM)
    seconds = body["ts"]
    when = np.datetime_as_string(np.datetime64(seconds, "s"), unit="s") + "Z"
    return {
        "end_device_ids": {
            "device_id": device_id,
            "application_ids": {"application_id": application.split("@")[0]},
            "dev_eui": base64.b16encode(device_id.encode()[:8].ljust(8, b"\0")).decode(),
        },
        "received_at": when,
        "uplink_message": {
            "f_port": 85,
            "f_cnt": f_cnt,
            "decoded_payload": {
                "battery": 90,
                "distance": round(distance),
                "position": "tilt" if body.get("tilt") else "normal",
            },
            "rx_metadata": [{"gateway_ids": {"gateway_id": "sim-gw-1"}, "rssi": -98, "snr": 7.5}],
            "received_at": when,
            "version_ids": {"brand_id": "milesight-iot", "model_id": "em310-udl"},
        },
    }
