"""One payload judged exactly as ingest would judge it, as a JSON-ready verdict.

The engine behind ``smartplace validate``: what an engineer runs when a
device "doesn't show up".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from smartplace.config import Settings
from smartplace.devices.directory import DeviceDirectory
from smartplace.devices.registry import Registry
from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas.profiles import Profile
from smartplace.schemas.ttn import TtnState


def iso_ns(ts_ns: int) -> str:
    """UTC ISO 8601 with all nine fractional digits."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def verdict(
    settings: Settings,
    topic: str,
    payload: bytes,
    received_ns: int,
    profile: Profile | None = None,
    parameters: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    limits = DecodeLimits.from_settings(settings.mqtt.topic_prefix, settings.ingest)
    directory = DeviceDirectory()
    registry_note = f"devices checked against {settings.registry_file}"
    if settings.registry_file.is_file():
        with Registry(settings.registry_file) as registry:
            for record in registry.list():
                directory.apply(record.device_id, orjson.dumps(record.registry_message()))
    else:  # nothing to look devices up in: judge the payload alone
        limits = replace(limits, require_registered=False)
        registry_note = f"no registry at {settings.registry_file}: devices not checked"
    ttn = TtnState(
        profiles_by_application=settings.ingest.ttn_profiles,
        profile_override=profile,
        parameters=dict(parameters or {}),
        devices=directory.devices,
    )
    batch = decode_messages([RawMessage(topic, payload, received_ns)], limits, ttn, directory)
    readings: list[dict[str, Any]] = []
    for cols in batch.columns:
        texts = cols.texts.tolist() if cols.texts is not None else [()] * len(cols)
        for i in range(len(cols)):
            fields: dict[str, Any] = {}
            for name, kind_of, value in zip(
                cols.fields, cols.field_types, cols.values[i].tolist(), strict=True
            ):
                if value == value:
                    fields[name] = (
                        bool(value)
                        if kind_of == "bool"
                        else int(value)
                        if kind_of == "int"
                        else value
                    )
            fields |= {
                name: text
                for name, text in zip(cols.text_fields, texts[i], strict=True)
                if text is not None
            }
            readings.append(
                {
                    "measurement": cols.measurement,
                    "kind": cols.kind,
                    "device_id": str(cols.device_ids[i]),
                    "site": str(cols.sites[i])
                    if cols.sites is not None and cols.sites[i]
                    else None,
                    "time": iso_ns(int(cols.ts_ns[i])),
                    "qc_flags": int(cols.qc_flags[i]),
                    "fields": fields,
                }
            )
    rejects = [
        {
            "reason": r.reason.value,
            "field": r.field_path,
            "message": r.detail,
            "device_id": r.device_id,
            "excerpt": r.payload_excerpt,
        }
        for r in batch.rejects
    ]
    status = (
        "accepted"
        if readings and not rejects
        else "rejected"
        if not readings
        else "partly accepted"
    )
    return {
        "topic": topic,
        "verdict": status,
        "readings": readings,
        "rejects": rejects,
        "registry": registry_note,
    }
