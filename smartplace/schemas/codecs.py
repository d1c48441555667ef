"""Binary LoRaWAN payloads decoded by a declarative channel table (Milesight's layout).

A payload is a run of channels, each ``id (1 byte) | type (1 byte) | data``,
the data's layout given by the device profile: little-endian integers of 1,
2, 4 or 8 bytes, signed or not, scaled, or looked up in a value table. A
channel whose layout depends on a byte inside it (a VS133 history record says
what it holds after its timestamp) names that field as its ``select`` and
lists a layout per value.

Decoding keeps what the vendor's own decoder keeps: the fields before a
channel the table does not know are kept, and the rest of the frame, whose
layout can then not be known, is reported as undecodable (the vendor's
decoders stop there too). An enumeration value the table has no meaning for
loses only its own field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    select: str | None = None
    """The name of one of ``fields`` whose raw value picks the rest of the layout from ``variants``."""
    variants: dict[str, list[ChannelField]] = {}
    """Raw value of ``select`` (as text) -> the fields that follow."""

    @model_validator(mode="after")
    def _select_names_a_field(self) -> Channel:
        if self.select is not None and self.select not in {f.name for f in self.fields}:
            raise ValueError(f"select {self.select!r} names none of the channel's fields")
        if self.variants and self.select is None:
            raise ValueError("variants need a select field")
        return self


@dataclass
class DecodedFrame:
    """What a frame gave: every field decoded, and what could not be."""

    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    """Why decoding stopped before the end of the frame (everything from there on is lost)."""
    dropped: list[str] = field(default_factory=list)
    """Fields whose enumeration value has no meaning (each lost alone)."""


def decode_frame(data: bytes, channels: Sequence[Channel]) -> DecodedFrame:
    """Every named field the payload carries up to where it stops following the table."""
    table = {(channel.id, channel.type): channel for channel in channels}
    frame = DecodedFrame()
    position = 0
    while position < len(data):
        if position + 2 > len(data):
            frame.error = f"payload ends inside a channel header at byte {position}"
            break
        channel = table.get((data[position], data[position + 1]))
        if channel is None:
            frame.error = f"unknown channel 0x{data[position]:02X} 0x{data[position + 1]:02X} at byte {position}"
            break
        start = position
        position += 2
        values: dict[str, Any] = {}
        raw_of: dict[str, int] = {}
        specs = list(channel.fields)
        error = None
        index = 0
        while index < len(specs):
            spec = specs[index]
            end = position + spec.size
            if end > len(data):
                error = f"payload ends inside {spec.name.lstrip('_')} at byte {position}"
                break
            raw = int.from_bytes(data[position:end], "little", signed=spec.signed)
            position = end
            raw_of[spec.name] = raw
            if spec.name == channel.select:
                variant = channel.variants.get(str(raw))
                if variant is None:
                    error = (
                        f"channel 0x{channel.id:02X} 0x{channel.type:02X} at byte {start}: "
                        f"{spec.name.lstrip('_')} {raw} is not a layout the profile knows"
                    )
                    break
                specs[index + 1 : index + 1] = variant
            index += 1
            if spec.name.startswith("_"):
                continue
            if spec.values is not None:
                if str(raw) not in spec.values:
                    # as the vendor's "unknown": an earlier value of the same field is void too
                    frame.dropped.append(f"{spec.name} has no meaning for value {raw}")
                    frame.values.pop(spec.name, None)
                    values.pop(spec.name, None)
                    continue
                values[spec.name] = spec.values[str(raw)]
            else:
                values[spec.name] = raw if spec.scale == 1.0 else raw * spec.scale
        if error is not None:
            frame.error = error  # a channel cut short or of unknown layout: nothing of it is kept
            break
        frame.values.update(values)
    return frame


def decode_channels(data: bytes, channels: Sequence[Channel]) -> dict[str, Any]:
    """Every named field of a frame that follows the table whole; raises CodecError naming the
    byte where it does not, or the field whose value has no meaning."""
    frame = decode_frame(data, channels)
    if frame.error is not None:
        raise CodecError(frame.error)
    if frame.dropped:
        raise CodecError("; ".join(frame.dropped))
    return frame.values
