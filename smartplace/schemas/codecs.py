"""Binary LoRaWAN payloads decoded by a declarative channel table (Milesight's layout).

A payload is a run of channels, each ``id (1 byte) | type (1 byte) | data``,
the data's layout given by the device profile: little-endian integers of 1,
2, 4 or 8 bytes, signed or not, scaled, or looked up in a value table. An
unknown channel cannot be skipped (its length is unknown), so it ends
decoding with an error that names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CodecError(ValueError):
    """The bytes do not follow the channel table."""


class ChannelField(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """Our field name, or one starting with '_' for bytes to read past (serial numbers, versions)."""
    size: Literal[1, 2, 4, 8]
    signed: bool = False
    scale: float = 1.0
    values: dict[str, Any] | None = None
    """Raw integer (as text) -> value, for enumerations such as 0: normal, 1: tilt."""


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(ge=0, le=255)
    type: int = Field(ge=0, le=255)
    fields: list[ChannelField]


def decode_channels(data: bytes, channels: Sequence[Channel]) -> dict[str, Any]:
    """Every named field the payload carries; raises CodecError naming the byte where it fails."""
    table = {(channel.id, channel.type): channel for channel in channels}
    values: dict[str, Any] = {}
    position = 0
    while position < len(data):
        if position + 2 > len(data):
            raise CodecError(f"payload ends inside a channel header at byte {position}")
        channel = table.get((data[position], data[position + 1]))
        if channel is None:
            raise CodecError(
                f"unknown channel 0x{data[position]:02X} 0x{data[position + 1]:02X} at byte {position}"
            )
        position += 2
        for spec in channel.fields:
            end = position + spec.size
            if end > len(data):
                raise CodecError(f"payload ends inside {spec.name.lstrip('_')} at byte {position}")
            raw = int.from_bytes(data[position:end], "little", signed=spec.signed)
            position = end
            if spec.name.startswith("_"):
                continue
            if spec.values is not None:
                if str(raw) not in spec.values:
                    raise CodecError(f"{spec.name} has no meaning for value {raw}")
                values[spec.name] = spec.values[str(raw)]
            else:
                values[spec.name] = raw if spec.scale == 1.0 else raw * spec.scale
    return values
