"""The MQTT topic scheme.

- ``{prefix}/{kind}/{device_id}/reading``: native JSON readings;
- ``{prefix}/{kind}/{device_id}/status``: native JSON device status;
- ``{prefix}/{kind}/{device_id}/senml``: SenML (RFC 8428) packs;
- ``v3/{application}@{tenant}/devices/{device_id}/up``: The Things Stack uplinks;
- ``application/{application_id}/device/{dev_eui}/event/up``: ChirpStack v4 uplink events;
- ``{prefix}/registry/{device_id}``: a device's registry record (retained), from the devices CLI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

Leaf = Literal["reading", "status", "senml", "ttn", "chirpstack", "registry"]
LEAVES: tuple[Leaf, ...] = ("reading", "status", "senml")
_TTN_RE = re.compile(r"^v3/([^/]+)/devices/([^/]+)/up$")
_CHIRPSTACK_RE = re.compile(r"^application/([^/]+)/device/([0-9a-fA-F]{16})/event/up$")
LORAWAN_LEAVES: tuple[Leaf, ...] = ("ttn", "chirpstack")
"""Network-server uplinks: their topics name no kind (the device's profile does)."""


@dataclass(frozen=True, slots=True)
class Topic:
    kind: str
    """The device kind; for LoRaWAN uplinks, empty until the device's profile names it."""
    device_id: str
    leaf: Leaf
    application: str = ""
    """LoRaWAN only: the application id (TTS: with @tenant)."""


def reading_topic(prefix: str, kind: str, device_id: str, leaf: Leaf = "reading") -> str:
    return f"{prefix}/{kind}/{device_id}/{leaf}"


def ingest_subscription(prefix: str) -> str:
    """Everything under the prefix: a device publishing on a wrong topic is then
    rejected as unknown_topic (and visible), rather than never seen at all."""
    return f"{prefix}/#"


@lru_cache(maxsize=8192)
def parse_topic(prefix: str, topic: str) -> Topic | None:
    """What a topic names, or None when it follows none of the schemes.

    Neither kind nor device id is validated here: the caller checks each,
    with its own reason. Ingest asks once per message and devices publish on
    the same few topics, so answers are remembered (a bounded number: odd
    topics cannot grow it).
    """
    ttn = _TTN_RE.fullmatch(topic)
    if ttn:
        return Topic(kind="", device_id=ttn[2], leaf="ttn", application=ttn[1])
    chirpstack = _CHIRPSTACK_RE.fullmatch(topic)
    if chirpstack:  # device_id is the DevEUI until decoding finds the device it belongs to
        return Topic(
            kind="", device_id=chirpstack[2].lower(), leaf="chirpstack", application=chirpstack[1]
        )
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) == 2 and parts[0] == "registry" and parts[1]:
        return Topic(kind="", device_id=parts[1], leaf="registry")
    if len(parts) != 3 or parts[2] not in LEAVES or not parts[0] or not parts[1]:
        return None
    leaf: Leaf = (
        "reading" if parts[2] == "reading" else "status" if parts[2] == "status" else "senml"
    )
    return Topic(kind=parts[0], device_id=parts[1], leaf=leaf)
