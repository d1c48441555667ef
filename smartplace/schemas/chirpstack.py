"""ChirpStack v4 uplinks from its MQTT integration: ``application/{application_id}/device/{dev_eui}/event/up``.

The event is ChirpStack's ``integration.UplinkEvent`` marshalled to JSON
(chirpstack/chirpstack api/proto/integration/integration.proto, message
UplinkEvent; JSON through pbjson with every field emitted, so names are
camelCase: ``deviceInfo``, ``fCnt``, ``fPort``, ``data`` (base64),
``object`` (only when the device profile has a codec), ``rxInfo``, ``time``).
It is decoded through the same profiles as The Things Stack's uplinks.

The device is the one the registry lists with the topic's DevEUI (its
``dev_eui`` metadata), else the one named by the event's ``deviceName``, else
the DevEUI itself. What decoding remembers is keyed on the topic's DevEUI, and
an event whose body names another DevEUI is refused, so one device's topic can
never touch another's frames or counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smartplace.devices.model import DeviceRecord
from smartplace.schemas.candidate import Decoded, Refusal
from smartplace.schemas.reading import DEVICE_ID_RE, timestamp_to_ns
from smartplace.schemas.reasons import RejectReason, reason_for
from smartplace.schemas.ttn import (
    F_CNT_MAX,
    LorawanUplink,
    TtnState,
    UplinkPaths,
    uplink_candidates,
)

CHIRPSTACK_SUBSCRIPTION = "application/+/device/+/event/up"
"""ChirpStack's default event topic (chirpstack/src/config.rs, MqttIntegration::default) for uplinks."""
PATHS = UplinkPaths("fCnt", "data", "object", "deviceInfo")


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DeviceInfo(_Event):
    applicationId: str = ""  # noqa: N815 (ChirpStack's JSON names)
    applicationName: str = ""  # noqa: N815
    deviceProfileName: str = ""  # noqa: N815
    deviceName: str = ""  # noqa: N815
    devEui: str  # noqa: N815


class RxInfo(_Event):
    rssi: float | None = None
    snr: float | None = None
    gwTime: str | None = None  # noqa: N815
    nsTime: str | None = None  # noqa: N815


class UplinkEvent(_Event):
    deduplicationId: str = ""  # noqa: N815
    time: str | None = None
    deviceInfo: DeviceInfo  # noqa: N815
    devAddr: str = ""  # noqa: N815
    fCnt: int = Field(0, ge=0, le=F_CNT_MAX)  # noqa: N815
    fPort: int | None = None  # noqa: N815
    data: str | None = None
    object: dict[str, Any] | None = None
    rxInfo: list[RxInfo] = []  # noqa: N815


def device_for(dev_eui: str, name: str, devices: Mapping[str, DeviceRecord]) -> str:
    """The device id of the device with this DevEUI (and ChirpStack name), through the registry."""
    eui = dev_eui.lower()
    for device in devices.values():
        if str(device.metadata.get("dev_eui", "")).lower() == eui:
            return device.device_id
    named = devices.get(name)
    if DEVICE_ID_RE.fullmatch(name) and (
        named is None or str(named.metadata.get("dev_eui", eui)).lower() == eui
    ):
        return name
    return eui


def topic_device_id(
    dev_eui: str, payload: bytes, devices: Mapping[str, DeviceRecord], max_payload_bytes: int
) -> str:
    """The device an event on the topic of ``dev_eui`` is from: what the registry checks and
    every reading of it are under. An event that cannot be read is the DevEUI's own (its
    reject is said when the event is decoded)."""
    if len(payload) > max_payload_bytes:
        return dev_eui.lower()
    try:
        document = orjson.loads(payload)
        info = document["deviceInfo"]
        name = info.get("deviceName", "") if isinstance(info, dict) else ""
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return dev_eui.lower()
    return device_for(dev_eui, name if isinstance(name, str) else "", devices)


def chirpstack_candidates(
    document: Any,
    payload: bytes,
    application_id: str,
    dev_eui: str,
    device_id: str,
    state: TtnState,
) -> Decoded:
    try:
        event = UplinkEvent.model_validate(document)
    except ValidationError as exc:
        _reason, detail, location = reason_for(exc)
        detail = f"not a ChirpStack uplink event: {detail}"
        return [Refusal(RejectReason.WRONG_SHAPE, detail, payload, location)]
    info = event.deviceInfo
    if info.devEui.lower() != dev_eui.lower():
        detail = f"event names DevEUI {info.devEui[:32]!r}, the topic names {dev_eui!r}"
        return [Refusal(RejectReason.TOPIC_DEVICE_MISMATCH, detail, payload, "deviceInfo.devEui")]
    ts_ns = None
    for text in (event.time, *(r.nsTime or r.gwTime for r in event.rxInfo)):
        if text:
            try:
                ts_ns = timestamp_to_ns(text)
            except ValueError:
                detail = f"unreadable event time {text[:40]!r}"
                return [Refusal(RejectReason.BAD_TIMESTAMP, detail, payload, "time")]
            break
    return uplink_candidates(
        LorawanUplink(
            device_id=device_id,
            state_key=f"chirpstack:{dev_eui.lower()}",
            session=event.devAddr,  # a new session (join) is a new device address
            f_cnt=event.fCnt,
            ts_ns=ts_ns,
            rssi=[r.rssi for r in event.rxInfo if r.rssi is not None],
            snr=[r.snr for r in event.rxInfo if r.snr is not None],
            frm_payload=event.data or None,
            decoded=event.object,
            model_id=info.deviceProfileName or None,
            application=info.applicationName or application_id,
            paths=PATHS,
        ),
        payload,
        state,
    )
