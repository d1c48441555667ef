"""Every setting smartplace reads, with its default and what it is for.

Settings come from, highest precedence first: arguments given in code, the
environment (``SMARTPLACE_*``, nested with ``__`` as in
``SMARTPLACE_MQTT__PORT``), a TOML file (``SMARTPLACE_CONFIG`` or
``./smartplace.toml``), and the file ``smartplace up`` writes for its local
stack (``.smartplace/stack.toml``). Nothing else in the package reads the
environment for configuration.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "SMARTPLACE_CONFIG"
DEFAULT_CONFIG_FILE = Path("smartplace.toml")
DEFAULT_STACK_DIR = Path(".smartplace")
STACK_FILE_NAME = "stack.toml"
MAX_INGEST_WORKERS = 16
"""The most ingest workers one deployment runs (each has its own broker account)."""


class _Section(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: int = Field(default=1883, ge=1, le=65535)
    """Broker port."""
    username: str | None = None
    """The ingest worker's MQTT account (the broker refuses anonymous clients)."""
    password: SecretStr | None = None
    """The ingest worker's MQTT password."""
    simulator_username: str | None = None
    """The simulator's MQTT account: it may publish as any device under the prefix."""
    simulator_password: SecretStr | None = None
    """The simulator's MQTT password."""
    admin_username: str | None = None
    """The broker's dynamic-security admin: the devices commands provision with it."""
    admin_password: SecretStr | None = None
    """The dynamic-security admin's password."""
    topic_prefix: str = Field(default="smartplace", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    """First topic level(s) of every smartplace topic: {prefix}/{kind}/{device_id}/reading."""
    client_id: str = "smartplace-ingest"
    """Client id of the ingest worker; it names the broker's persistent session, so keep it stable."""
    keepalive_s: int = Field(default=30, ge=5)
    """Seconds between keep-alive pings."""
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    """How long the broker keeps ingest's session (and queues its messages) while it is away."""
    receive_maximum: int = Field(default=10_000, ge=1, le=65_535)
    """Unacknowledged QoS 1 messages the broker may have in flight to ingest."""
    tls_ca_file: Path | None = None
    """CA bundle for a TLS connection to the broker; set it to turn TLS on."""
    extra_subscriptions: list[str] = ["v3/+/devices/+/up", "application/+/device/+/event/up"]
    """Subscriptions beyond {topic_prefix}/#: by default The Things Stack and ChirpStack v4 uplinks (bridged)."""

    def ingest_account(self) -> Credentials | None:
        return _account(self.username, self.password)

    def simulator_account(self) -> Credentials | None:
        return _account(self.simulator_username, self.simulator_password)

    def admin_account(self) -> Credentials | None:
        return _account(self.admin_username, self.admin_password)


Credentials = tuple[str, str]
"""An MQTT user name and password."""


def _account(username: str | None, password: SecretStr | None) -> Credentials | None:
    if username is None:
        return None
    return username, password.get_secret_value() if password else ""


class InfluxSettings(_Section):
    url: str = "http://127.0.0.1:8086"
    """Base URL of InfluxDB's v1-compatible HTTP API (1.x natively, 2.x and 3 through v1 compatibility)."""
    database: str = Field(default="smartplace", pattern=r"^[A-Za-z0-9_-]+$")
    """Database (1.x) or the database name of the DBRP mapping (2.x)."""
    raw_retention_policy: str = Field(default="raw", pattern=r"^[A-Za-z0-9_-]+$")
    """Retention policy for raw readings, rejects and pipeline stats."""
    raw_retention: str = Field(default="30d", pattern=r"^(INF|\d+[hdw])$")
    """How long raw readings are kept (InfluxQL duration)."""
    agg_retention_policy: str = Field(default="agg", pattern=r"^[A-Za-z0-9_-]+$")
    """Retention policy for downsampled aggregates (kept indefinitely)."""
    create_database: bool = True
    """Create the database and retention policies when missing (1.x); turn off for 2.x/3."""
    username: str | None = None
    """User name for user/password authentication."""
    password: SecretStr | None = None
    """Password for user/password authentication."""
    reader_username: str | None = None
    """Read-only user for the feeds service, 'smartplace trace' and the demo's report (as the
    local stack makes one); unset: username."""
    reader_password: SecretStr | None = None
    """The read-only user's password."""
    token: SecretStr | None = None
    """API token (2.x/3); sent as 'Authorization: Token ...' and preferred over user/password."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Seconds to wait for one HTTP request."""
    precision: Literal["ns", "us", "ms", "s"] = "ns"
    """Timestamp precision written to InfluxDB. Coarser saves a little space, but two readings of
    one device within the same unit then overwrite each other."""
    verify_tls: bool = True
    """Check InfluxDB's TLS certificate on https URLs."""

    def for_reading(self) -> InfluxSettings:
        """These settings with the read-only user, when one is set: for what only reads."""
        if self.reader_username is None:
            return self
        return self.model_copy(
            update={"username": self.reader_username, "password": self.reader_password}
        )


class IngestSettings(_Section):
    batch_max_messages: int = Field(default=5_000, ge=1)
    """Most MQTT messages handled as one micro-batch."""
    batch_max_wait_s: float = Field(default=0.05, gt=0)
    """Longest a message waits for its micro-batch to fill (then it is fsynced and acknowledged)."""
    batch_max_bytes: int = Field(default=1 << 20, ge=1024)
    """Most payload bytes in one micro-batch, received or written (one gzip request): with the
    batch's decoded readings, what bounds ingest's memory."""
    max_payload_bytes: int = Field(default=256 * 1024, ge=64)
    """Payloads larger than this are rejected (payload_too_large); the broker is told to drop,
    not send, any packet over four times this (at least 1 MiB)."""

    def max_packet_bytes(self) -> int:
        """The MQTT Maximum Packet Size ingest asks for: what one message can cost it."""
        return max(4 * self.max_payload_bytes, 1 << 20)

    max_readings_per_payload: int = Field(default=1_000, ge=1)
    """Most readings one payload may make (batch_too_long): a native array's items, a SenML
    pack's readings and refused records, a TTS uplink's readings."""
    max_future_s: float = Field(default=300.0, ge=0)
    """Readings timestamped further ahead of the arrival time are rejected (future_timestamp)."""
    max_age_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    """Readings older than this at arrival are rejected (stale_timestamp)."""
    require_registered_devices: bool = True
    """Refuse readings from devices the registry does not list (unknown_device)."""
    ttn_profiles: dict[str, str] = {}
    """TTN application id -> payload profile, for devices whose uplinks name no device model."""
    windows_s: list[int] = Field(default=[60, 900, 3600, 86400], min_length=1)
    """Tumbling window lengths, in seconds, that readings are downsampled to."""
    window_grace_s: float = Field(default=120.0, ge=0)
    """How long after its end a window still takes late readings."""
    stats_interval_s: float = Field(default=10.0, gt=0)
    """How often each worker writes its counters to the measurement ingest_stats."""
    device_health_interval_s: float = Field(default=60.0, gt=0)
    """How often each worker writes a device_health point for every registered device of its own
    (seconds since its last message, battery, RSSI, SNR, registry status), silent or not."""
    write_retry_max_s: float = Field(default=30.0, gt=0)
    """Longest pause between retries while InfluxDB is unreachable."""
    spool_dir: Path | None = None
    """Where received messages are made durable before they are acknowledged; default: the
    stack directory's spool/CLIENT_ID. Keep it on local disk."""
    spool_max_bytes: int = Field(default=1 << 30, ge=64 * 1024)
    """Most disk the spool may use; when full (InfluxDB down a long while) ingest stops
    acknowledging and the broker holds the rest."""
    commit_interval_s: float = Field(default=2.0, gt=0)
    """How often the committed offset and open windows are checkpointed: at most this much
    is written again after a crash."""
    drain_timeout_s: float = Field(default=30.0, ge=0)
    """On SIGTERM, how long to keep writing what the spool holds before leaving it for the
    next start."""
    http_host: str = "127.0.0.1"
    """Address of the health and metrics endpoints (/healthz, /readyz, /metrics)."""
    http_port: int | None = Field(default=9108, ge=0, le=65_535)
    """Port of the health and metrics endpoints; unset turns them off. Worker N (of several)
    listens on this port + N."""
    workers: int = Field(default=1, ge=1, le=MAX_INGEST_WORKERS)
    """Ingest processes, each handling the devices whose id hashes to it (so windows stay
    whole), each with its own MQTT session (CLIENT_ID-wN) and spool. Each receives every
    message: more than one pays off for arrays of readings, not one reading per message."""
    worker_index: int = Field(default=0, ge=0)
    """Which worker this process is; 'smartplace ingest' sets it for each worker it starts."""


class FeedsSettings(_Section):
    public_base_url: str = Field(
        default="http://127.0.0.1:8000", pattern=r"^https?://[^\s/?#]+(/[^\s?#]*[^\s?#/])?/?$"
    )
    """The open data service's address as the public reaches it (scheme, host, any path
    prefix): every catalogue identifier, download URL and next link is made from it, never
    from a request's Host header."""
    contact_email: str = Field(
        default="opendata@example.org", pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"
    )
    """Where the catalogue says to write about the data (its vcard:hasEmail): set it to the
    council's open data address."""
    footfall_min_count: int = Field(default=5, ge=0)
    """Footfall counts from 1 to one below this are published empty (suppressed), so no
    period shows a handful of people; 0 publishes every count."""
    cors_origins: list[str] = ["*"]
    """Web origins allowed to call the open data service from a browser (CORS); "*" is any:
    the data is open, and no request carries credentials."""


class Settings(BaseSettings):
    """All of smartplace's settings."""

    model_config = SettingsConfigDict(
        env_prefix="SMARTPLACE_",
        env_nested_delimiter="__",
        use_attribute_docstrings=True,
        extra="ignore",
    )

    mqtt: MqttSettings = MqttSettings()
    """MQTT broker connection."""
    influx: InfluxSettings = InfluxSettings()
    """InfluxDB connection and storage layout."""
    ingest: IngestSettings = IngestSettings()
    """Ingest service tuning and validation limits."""
    feeds: FeedsSettings = FeedsSettings()
    """The open data service (smartplace feeds serve)."""
    registry_file: Path = DEFAULT_STACK_DIR / "registry.db"
    """The device registry (SQLite), written by 'smartplace devices'; ingest never reads it."""
    stack_dir: Path = DEFAULT_STACK_DIR
    """Where 'smartplace up' keeps the local broker's and database's data, logs and state."""
    mosquitto_bin: Path | None = None
    """mosquitto binary for the local stack and tests; default: PATH, then /usr/sbin."""
    mosquitto_dynsec_plugin: Path | None = None
    """mosquitto's dynamic-security plugin (.so); default: where Debian and eclipse-mosquitto put it."""
    influxd_bin: Path | None = None
    """influxd binary for the local stack and tests; default: PATH."""

    def spool_directory(self) -> Path:
        return self.ingest.spool_dir or self.stack_dir / "spool" / self.mqtt.client_id

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files: one source of truth
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        user_file = os.environ.get(CONFIG_FILE_ENV)
        if user_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(user_file)))
        elif DEFAULT_CONFIG_FILE.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=DEFAULT_CONFIG_FILE))
        stack_dir = Path(os.environ.get("SMARTPLACE_STACK_DIR", DEFAULT_STACK_DIR))
        stack_file = stack_dir / STACK_FILE_NAME
        if stack_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=stack_file))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Settings from every source, with ``overrides`` taking precedence."""
    return Settings(**overrides)


def invalid_settings(exc: ValidationError) -> str:
    """Each setting ``exc`` refused, as one line: its name, its variable, why, and the value."""
    problems = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        env = "SMARTPLACE_" + "__".join(str(part).upper() for part in error["loc"])
        secret = any(word in path for word in ("password", "token", "secret"))
        value = "" if secret else f", not {error['input']!r}"
        problems.append(f"setting {path} ({env}): {error['msg']}{value}")
    return "; ".join(problems)


def settings_reference() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, in declaration order.

    The README's configuration table and ``smartplace config`` are generated
    from this, so documentation cannot drift from the code.
    """
    rows: list[tuple[str, str, str]] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            for sub_name, sub_field in annotation.model_fields.items():
                env = f"SMARTPLACE_{name.upper()}__{sub_name.upper()}"
                rows.append((env, _show_default(sub_field.default), sub_field.description or ""))
        else:
            env = f"SMARTPLACE_{name.upper()}"
            rows.append((env, _show_default(field.default), field.description or ""))
    return rows


def settings_environment(settings: Settings) -> dict[str, str]:
    """The SMARTPLACE_* variables that give a child process (``smartplace ingest``, say) these
    settings: every one that differs from its default. (None cannot be said in the
    environment, so a setting left unset stays at its default there.)"""
    env: dict[str, str] = {}

    def add(name: str, value: object, default: object) -> None:
        if value != default and value is not None:
            env[name] = _environment_value(value)

    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, _Section):
            for sub_name, sub_field in type(value).model_fields.items():
                add(
                    f"SMARTPLACE_{name.upper()}__{sub_name.upper()}",
                    getattr(value, sub_name),
                    sub_field.default,
                )
        else:
            add(f"SMARTPLACE_{name.upper()}", value, field.default)
    return env


def _environment_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)  # pydantic-settings reads them from the environment as JSON
    return str(value)


def _show_default(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return json.dumps(value)  # pydantic-settings reads lists from the environment as JSON
    return str(value)
