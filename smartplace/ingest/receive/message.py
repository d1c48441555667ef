"""What the receive stage hands on: one MQTT message, as it arrived."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RawMessage:
    """One MQTT message as it arrived; ``mid``/``qos``/``connection`` let the service
    acknowledge it later, on the connection it came by. Not frozen: one is made per
    message, and a frozen one took 4x as long to make. Nothing changes it once made."""

    topic: str
    payload: bytes
    received_ns: int
    mid: int = 0
    qos: int = 0
    redelivered: bool = False
    """The broker's DUP flag: it sent this before and saw no acknowledgement."""
    connection: int = 0
    retained: bool = False
    """The RETAIN flag: a message stored before we subscribed, not a live one (3.3.1.3)."""
