"""smartplace's own exceptions.

Each message says what went wrong and what to do next; the CLI prints it as
one line and exits non-zero. Library code raises these, never bare Exception.
"""


class SmartplaceError(Exception):
    """Base of every error smartplace raises on purpose."""


class ConfigError(SmartplaceError):
    """Settings are missing or contradict each other."""


class ServerNotFoundError(SmartplaceError):
    """A server binary (mosquitto, influxd) is not installed."""


class ServerStartError(SmartplaceError):
    """A server process did not become ready."""


class InfluxError(SmartplaceError):
    """InfluxDB refused a request or could not be reached."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class InfluxUnavailableError(InfluxError):
    """InfluxDB could not be reached or answered 5xx: worth retrying."""


class InfluxAuthError(InfluxError):
    """InfluxDB answered 401/403: retrying will not help until credentials change."""


class MqttError(SmartplaceError):
    """The MQTT broker refused the connection or could not be reached."""


class StateFileError(SmartplaceError):
    """A saved ingest state (checkpoint) is not one this version can use: it is not loaded."""
