"""A mosquitto broker process with a config smartplace generates.

The broker settings that matter for delivery live in BROKER_SETTINGS, the one
source for the local stack, the tests and ``deploy/mosquitto/mosquitto.conf``.
"""

from __future__ import annotations

import getpass
import shutil
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from smartplace.errors import ServerNotFoundError
from smartplace.stack.process import ServerProcess

INSTALL_HINT = "install it with 'sudo apt-get install mosquitto' or set SMARTPLACE_MOSQUITTO_BIN"

# Each line says why: these are the settings that decide whether a backlog survives.
BROKER_SETTINGS = """\
# Keep persistent sessions and their queued messages across broker restarts.
persistence true
# Write the in-memory database to disk every 10 s, not only at shutdown, so a crash loses little.
autosave_interval 10
# The default (1000 messages) silently drops a persistent session's backlog while ingest is away;
# limit the queue by bytes instead.
max_queued_messages 0
max_queued_bytes 1073741824
# Readings are small; anything larger than this is not a reading.
message_size_limit 1048576
"""


def find_mosquitto(configured: Path | None = None) -> Path:
    """The mosquitto binary: the configured one, then PATH, then Debian's /usr/sbin."""
    if configured is not None:
        if not configured.is_file():
            raise ServerNotFoundError(f"mosquitto not found at {configured}; {INSTALL_HINT}")
        return configured
    found = shutil.which("mosquitto")
    if found:
        return Path(found)
    for candidate in (Path("/usr/sbin/mosquitto"), Path("/usr/local/sbin/mosquitto")):
        if candidate.is_file():
            return candidate
    raise ServerNotFoundError(f"mosquitto is not installed; {INSTALL_HINT}")


def render_local_config(host: str, port: int, data_dir: Path, log_path: Path) -> str:
    """mosquitto.conf for a broker on ``host:port`` keeping its data in ``data_dir``."""
    return (
        BROKER_SETTINGS
        + f"""
# Local listener only: the stack and the tests never face a network.
listener {port} {host}
allow_anonymous true
persistence_location {data_dir}/
log_dest file {log_path}
log_type error
log_type warning
log_type notice
log_type information
# Started as root mosquitto drops to the 'mosquitto' user, which cannot write our data dir.
user {getpass.getuser()}
"""
    )


def mqtt_answers(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """True when a broker on host:port answers CONNECT with a CONNACK (any reason code)."""
    answered: list[bool] = []

    def on_connect(*_args: object) -> None:
        answered.append(True)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"smartplace-probe-{uuid.uuid4()}")
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
        deadline = time.monotonic() + timeout_s
        while not answered and time.monotonic() < deadline:
            client.loop(timeout=0.05)
        client.disconnect()
    except OSError:
        return False
    return bool(answered)


class MosquittoServer(ServerProcess):
    name = "mosquitto"

    def __init__(self, binary: Path, base_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.binary = binary
        self.base_dir = base_dir
        self.host = host
        self.port = port
        self.config_path = base_dir / "mosquitto.conf"
        self.data_dir = base_dir / "data"
        self.log_path = base_dir / "mosquitto.log"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            render_local_config(self.host, self.port, self.data_dir, self.log_path)
        )

    def argv(self) -> list[str]:
        return [str(self.binary), "-c", str(self.config_path)]

    def is_ready(self) -> bool:
        return mqtt_answers(self.host, self.port)

    def describe(self) -> str:
        return f"mqtt://{self.host}:{self.port}"
