"""Device payload profiles: data, one TOML file per device model, in smartplace/profiles/.

A profile says which kind a device is, how the names in a network server's
decoded payload map onto our fields, how to decode its raw bytes when there
is no decoded payload (a channel table), and the parameters of a derivation
(a bin's depth, which counting lines add up). Adding a device model is adding
a file, not code.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from smartplace.schemas.codecs import Channel


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["air_quality", "footfall", "bin"]
    description: str
    documentation: str
    """Where the vendor documents the payload this profile follows."""
    ttn_model_ids: list[str] = []
    """The Things Stack device-repository model ids (uplink_message.version_ids.model_id) it serves."""
    decoded_fields: dict[str, str] = {}
    """decoded_payload name -> our field name, where they differ."""
    decoded_values: dict[str, dict[str, Any]] = {}
    """decoded_payload name -> {its text value -> our value}, e.g. position: tilt -> true."""
    channels: list[Channel] = []
    """Channel table for raw frm_payload bytes."""
    derive: Literal["none", "bin_fill_from_distance", "footfall_from_totals"] = "none"
    parameters: dict[str, float] = {}
    """Defaults for the derivation, overridable per device."""
    counted_lines: list[int] = Field(default=[1], min_length=1)
    """footfall_from_totals: the counting lines whose totals add up to the site's count."""


class UnknownProfileError(LookupError):
    pass


@cache
def load_profiles() -> dict[str, Profile]:
    """Every profile shipped in smartplace/profiles, by name."""
    profiles = {}
    for entry in resources.files("smartplace.profiles").iterdir():
        if entry.name.endswith(".toml"):
            profile = Profile.model_validate(tomllib.loads(entry.read_text()))
            profiles[profile.name] = profile
    return profiles


def profile_named(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        raise UnknownProfileError(f"no profile {name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


def profile_for_model_id(model_id: str) -> Profile | None:
    """The profile serving a device-repository model id (TTS), or named so (a ChirpStack
    device profile named after ours)."""
    for profile in load_profiles().values():
        if model_id in profile.ttn_model_ids or model_id == profile.name:
            return profile
    return None
