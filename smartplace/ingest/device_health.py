"""Every registered device's health, written whether it speaks or not: measurement ``device_health``.

A device that sends nothing writes nothing, so a query over its readings
returns no series for it and an alert on them cannot fire for that device
alone (Grafana resolves a missing series; README, Dashboards and alerts).
So each worker writes, every ``device_health_interval_s``, one point per
device in the registry that hashes to it: ``silent_s`` (seconds since its
last message), ``heard`` (whether it has sent anything since this worker
started), ``registry_status``, the latest ``battery_pct``, ``rssi_dbm``,
``snr_db`` and ``firmware`` it reported, tagged ``device_id``, ``kind``,
``site`` and its registry ``status``. A device not heard since the start
carries on from the silence its last point said (``silent_s`` at that
time), so a restart does not make a long-silent device look freshly heard.

The receive loop only notes each message's topic and arrival (a dict update
per batch); topics are resolved to devices, and status payloads read, once
per interval for the latest message of each topic. "Last message" counts
what arrived, valid or not: a device that sends only what ingest rejects is
not silent, and the rejects alerts and tables show it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from smartplace.devices.model import DeviceRecord
from smartplace.errors import InfluxError
from smartplace.influx import quote_identifier
from smartplace.ingest.receive.shard import shard_of
from smartplace.lineprotocol import FieldValue, format_point
from smartplace.schemas.chirpstack import topic_device_id
from smartplace.schemas.topics import parse_topic, reading_topic
from smartplace.storage import DEVICE_HEALTH

if TYPE_CHECKING:
    from smartplace.influx import InfluxClient
    from smartplace.ingest.receive.message import RawMessage

log = logging.getLogger(__name__)

STATUS_SUFFIXES = ("/status", "/up")
"""Topics whose payloads carry a device's battery or radio link (native status, TTN uplink)."""
NUMERIC = {"battery_pct": (0.0, 100.0), "rssi_dbm": (-150.0, 0.0), "snr_db": (-30.0, 30.0)}
"""The status fields kept, with the ranges device_status accepts (out of range: not kept)."""
FIRMWARE_MAX_CHARS = 40


class DeviceHealth:
    def __init__(
        self, prefix: str, interval_s: float, workers: int = 1, worker_index: int = 0
    ) -> None:
        self.prefix = prefix
        self.interval_s = interval_s
        self.workers = workers
        self.worker_index = worker_index
        self.started_ns = time.time_ns()
        self._arrived: dict[str, int] = {}
        """Topic -> arrival of its latest message, since the last write."""
        self._payloads: dict[str, bytes] = {}
        """Status or uplink topic -> its latest payload, since the last write."""
        self._last_ns: dict[str, int] = {}
        self._status: dict[str, dict[str, FieldValue]] = {}
        self._next_write = time.monotonic() + interval_s
        self._silent_since: dict[str, int] | None = None
        """Device -> when it was last heard, as the points written before this start said."""

    def heard(self, messages: Sequence[RawMessage]) -> None:
        """Note a batch the receive loop took (cheap: it runs on the hot path)."""
        self._arrived.update((m.topic, m.received_ns) for m in messages)
        self._payloads.update(
            (m.topic, m.payload) for m in messages if m.topic.endswith(STATUS_SUFFIXES)
        )

    def write_if_due(
        self, influx: InfluxClient, devices: Mapping[str, DeviceRecord], retention_policy: str
    ) -> None:
        """One attempt per interval: health is for watching, not data to hold readings back for."""
        now = time.monotonic()
        if now < self._next_write:
            return
        self._next_write = now + self.interval_s
        if self._silent_since is None:
            self._silent_since = self._silence_before(influx, retention_policy)
        try:
            lines = self.lines(dict(devices), time.time_ns())  # a copy: the writer updates it
        except Exception:
            # Health is for watching: a message it cannot read must never stop the receive loop.
            log.exception("device health skipped this interval")
            self._arrived, self._payloads = {}, {}
            return
        try:
            influx.write(lines, retention_policy)
        except InfluxError as exc:
            log.warning("could not write device health: %s", exc)

    def lines(self, devices: Mapping[str, DeviceRecord], now_ns: int) -> list[str]:
        """One point per registered device of this worker's, at ``now_ns``."""
        self._absorb(devices)
        lines = []
        for device_id, record in devices.items():
            if self.workers > 1 and self._shard(record) != self.worker_index:
                continue
            last = self._last_ns.get(device_id)
            before = (self._silent_since or {}).get(device_id, self.started_ns)
            since = last if last is not None else min(before, self.started_ns)
            fields: dict[str, FieldValue] = {
                "silent_s": round(max(0.0, (now_ns - since) / 1e9), 3),
                "heard": last is not None,
                "registry_status": record.status,
                **self._status.get(device_id, {}),
            }
            tags = {
                "device_id": device_id,
                "kind": record.kind,
                "site": record.site or "",
                "status": record.status,
            }
            lines.append(format_point(DEVICE_HEALTH, tags, fields, now_ns))
        return lines

    def _silence_before(self, influx: InfluxClient, retention_policy: str) -> dict[str, int]:
        """When each device was last heard, by the latest point written before this start;
        empty when InfluxDB cannot say (health then counts from the start, as before)."""
        policy = quote_identifier(retention_policy)
        try:
            rows = influx.query_rows(
                f'SELECT last("silent_s") AS "silent_s" FROM {policy}."{DEVICE_HEALTH}"'  # noqa: S608
                f' WHERE time <= {self.started_ns} GROUP BY "device_id"'
            )
        except InfluxError as exc:
            log.warning("could not read device health written before this start: %s", exc)
            return {}
        return {
            str(row["device_id"]): int(row["time"]) - round(float(row["silent_s"]) * 1e9)
            for row in rows
            if row.get("device_id") and isinstance(row.get("silent_s"), int | float)
        }

    def _shard(self, record: DeviceRecord) -> int:
        return shard_of(
            self.prefix, reading_topic(self.prefix, record.kind, record.device_id), self.workers
        )

    def _absorb(self, devices: Mapping[str, DeviceRecord]) -> None:
        """Fold the topics heard since the last write into each registered device's state."""
        arrived, self._arrived = self._arrived, {}
        payloads, self._payloads = self._payloads, {}
        for topic, received_ns in arrived.items():
            parsed = parse_topic(self.prefix, topic)
            if parsed is None or parsed.leaf == "registry":
                continue
            payload = payloads.get(topic)
            device = parsed.device_id
            if parsed.leaf == "chirpstack" and payload is not None:
                # The topic names a DevEUI: the registry says whose (read whatever its size:
                # the broker bounds it, and this runs once an interval, not per message).
                device = topic_device_id(device, payload, devices, len(payload))
            if device not in devices:
                continue  # only registered devices: odd topics cannot grow this state
            self._last_ns[device] = max(received_ns, self._last_ns.get(device, 0))
            if payload is not None:
                found = status_fields(
                    payload, ttn=parsed.leaf == "ttn", chirpstack=parsed.leaf == "chirpstack"
                )
                self._status[device] = {**self._status.get(device, {}), **found}
        for gone in [d for d in self._last_ns if d not in devices]:
            del self._last_ns[gone]
            self._status.pop(gone, None)


def status_fields(payload: bytes, ttn: bool, chirpstack: bool = False) -> dict[str, FieldValue]:
    """Battery, RSSI, SNR and firmware from a native status (object or array), a TTS uplink
    (``ttn``) or a ChirpStack event (``chirpstack``); what is missing, mistyped or out of
    range is left out (decode rejects or flags it)."""
    try:
        document: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(document, list):
        document = document[-1] if document else None
    if not isinstance(document, dict):
        return {}
    found: dict[str, FieldValue] = {}
    if ttn or chirpstack:
        # A TTS uplink, or a ChirpStack event (its object and rxInfo at the top level).
        uplink = document if chirpstack else document.get("uplink_message")
        if not isinstance(uplink, dict):
            return {}
        decoded = uplink.get("object" if chirpstack else "decoded_payload")
        document = decoded if isinstance(decoded, dict) else {}
        radio = uplink.get("rxInfo" if chirpstack else "rx_metadata")
        gateways = [g for g in radio if isinstance(g, dict)] if isinstance(radio, list) else []
        rssi = [_number(g.get("rssi", g.get("channel_rssi"))) for g in gateways]
        snr = [_number(g.get("snr")) for g in gateways]
        document = {
            **document,
            "rssi_dbm": max((r for r in rssi if r is not None), default=None),
            "snr_db": max((s for s in snr if s is not None), default=None),
        }
    for name, (low, high) in NUMERIC.items():
        value = _number(document.get(name))
        if value is not None and low <= value <= high:
            found[name] = value
    firmware = document.get("firmware")
    if (
        isinstance(firmware, str)
        and 0 < len(firmware) <= FIRMWARE_MAX_CHARS
        and firmware.isprintable()
    ):
        found["firmware"] = firmware
    return found


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
