"""The MQTT topic scheme: {prefix}/{kind}/{device_id}/reading and .../status."""

from __future__ import annotations

from dataclasses import dataclass

READING_SUFFIX = "reading"


@dataclass(frozen=True, slots=True)
class ReadingTopic:
    kind: str
    device_id: str


def reading_topic(prefix: str, kind: str, device_id: str) -> str:
    return f"{prefix}/{kind}/{device_id}/{READING_SUFFIX}"


def ingest_subscription(prefix: str) -> str:
    """Everything under the prefix: a device publishing on a wrong topic is then
    rejected as unknown_topic (and visible), rather than never seen at all."""
    return f"{prefix}/#"


def parse_reading_topic(prefix: str, topic: str) -> ReadingTopic | None:
    """Kind and device id named by a reading topic, or None when it is not one.

    Neither part is validated here: the caller checks the kind against the
    known ones and the device id against its pattern, each with its own reason.
    """
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 3 or parts[2] != READING_SUFFIX or not parts[0] or not parts[1]:
        return None
    return ReadingTopic(kind=parts[0], device_id=parts[1])
