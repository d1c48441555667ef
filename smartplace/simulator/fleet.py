"""The fleet file: sites, the devices at each, how often they report, and a seed.

TOML; ``smartplace simulate --fleet FILE``. Without one, the default fleet
(``fleets/stockport.toml``) lays 25 devices over Stockport's town centre.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from smartplace.devices.model import DeviceRecord
from smartplace.errors import ConfigError
from smartplace.simulator.faults import FaultRates

Kind = Literal["air_quality", "footfall", "bin"]
Format = Literal["native", "senml", "ttn"]
ID_PREFIX = {"air_quality": "aq", "footfall": "ff", "bin": "bin"}
TTN_PROFILE = {"bin": "milesight-em310-udl"}
"""Kinds the simulator can send as TTN uplinks, through this profile's decoded payload."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    busyness: float = Field(default=1.0, gt=0, le=10)
    """Scales footfall and how fast bins fill; 1.0 is a typical town-centre doorway."""
    roadside: bool = False
    """Beside a busy road: more NO2."""


class DeviceGroup(_Strict):
    site: str
    """A site's name, or "*" for one group at every site."""
    kind: Kind
    count: int = Field(default=1, ge=1, le=10_000)
    interval_s: int = Field(default=60, ge=1, le=86_400)
    format: Format = "native"


class StatusSettings(_Strict):
    interval_s: int = Field(default=3600, ge=60)


class Fleet(_Strict):
    seed: int = 0
    sites: list[Site] = Field(min_length=1)
    devices: list[DeviceGroup] = Field(min_length=1)
    status: StatusSettings | None = StatusSettings()
    faults: FaultRates = FaultRates()

    @model_validator(mode="after")
    def _known_sites_and_formats(self) -> Fleet:
        names = {site.name for site in self.sites}
        for group in self.devices:
            if group.site != "*" and group.site not in names:
                raise ValueError(f"devices name site {group.site!r}, which is not in sites")
            if group.format == "ttn" and group.kind not in TTN_PROFILE:
                raise ValueError(
                    f"{group.kind} devices cannot be sent as TTN uplinks (only "
                    f"{', '.join(TTN_PROFILE)}: they have a payload profile)"
                )
        return self

    def members(self) -> list[SimDevice]:
        """Every device, numbered per kind in the order the file lists them."""
        numbers = dict.fromkeys(ID_PREFIX, 0)
        out = []
        for group in self.devices:
            sites = (
                self.sites if group.site == "*" else [s for s in self.sites if s.name == group.site]
            )
            for site in sites:
                for _ in range(group.count):
                    numbers[group.kind] += 1
                    out.append(
                        SimDevice(
                            f"{ID_PREFIX[group.kind]}-{numbers[group.kind]:04d}",
                            group.kind,
                            site,
                            group.interval_s,
                            group.format,
                        )
                    )
        return out


@dataclass(frozen=True, slots=True)
class SimDevice:
    device_id: str
    kind: Kind
    site: Site
    interval_s: int
    format: Format

    def record(self) -> DeviceRecord:
        return DeviceRecord(
            device_id=self.device_id,
            kind=self.kind,
            site=self.site.name,
            latitude=self.site.latitude,
            longitude=self.site.longitude,
            profile=TTN_PROFILE.get(self.kind) if self.format == "ttn" else None,
            metadata={"simulated": True},
        )


def load_fleet(path: Path | None = None) -> Fleet:
    """The fleet in ``path``, or the default fleet; a bad file says what is wrong and where."""
    if path is None:
        text = resources.files("smartplace.simulator").joinpath("fleets/stockport.toml").read_text()
        where = "the default fleet"
    else:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the fleet file {path}: {exc}") from None
        where = str(path)
    try:
        return Fleet.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(file)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"{where} is not a valid fleet: {problems}") from None
