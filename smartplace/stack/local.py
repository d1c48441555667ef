"""The local demo stack behind ``smartplace up``: a broker and a database under ./.smartplace/.

The servers run detached, so they outlive the command; their pids and ports
are kept in ``state.json``, and ``stack.toml`` tells every other smartplace
command where they listen. Data stays between runs. Every bridge file in
``bridges/`` (``smartplace lorawan bridge`` writes there by default) is part
of the broker's configuration from the next start.

The broker has two listeners, as docker-compose's has: TLS, for devices (the
simulator, in the demo), with a CA and a certificate for 127.0.0.1 made once
in ``tls/``; and plain MQTT, for ingest, the admin and the other commands,
which compose keeps on its internal network and this stack on loopback.
``tls.env`` holds the two settings a device-side command needs for TLS.
"""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import asdict, dataclass

from pydantic import SecretStr

from smartplace.accounts import (
    ADMIN_USERNAME,
    INFLUX_READER_USERNAME,
    INGEST_USERNAME,
    SIMULATOR_USERNAME,
)
from smartplace.config import STACK_FILE_NAME, MqttSettings, Settings
from smartplace.devices.dynsec import Dynsec
from smartplace.private_files import private_dir, write_private_text
from smartplace.stack.influxd import InfluxdServer, find_influxd, influx_answers, secure_storage
from smartplace.stack.mosquitto import (
    MosquittoServer,
    find_dynsec_plugin,
    find_mosquitto,
    mqtt_answers,
)
from smartplace.stack.process import free_port, pid_is_running, port_is_free, terminate_pid
from smartplace.stack.tls import TlsFiles, ensure_certificates

HOST = "127.0.0.1"
STATE_FILE_NAME = "state.json"
BRIDGES_DIR_NAME = "bridges"
"""Under the stack dir: the bridge files ('smartplace lorawan bridge') the local broker includes."""
TLS_DIR_NAME = "tls"
"""Under the stack dir: the local CA and the broker's certificate (stack.tls), kept between runs."""
TLS_ENV_FILE_NAME = "tls.env"
"""Under the stack dir: SMARTPLACE_MQTT__PORT and __TLS_CA_FILE for the TLS listener."""


@dataclass
class StackState:
    mosquitto_pid: int
    mqtt_port: int
    influxd_pid: int
    influx_http_port: int
    influx_rpc_port: int
    mqtt_tls_port: int | None = None
    """None in a state file from before the TLS listener: that stack is restarted whole."""

    @property
    def mqtt_address(self) -> str:
        return f"mqtt://{HOST}:{self.mqtt_port}"

    @property
    def mqtt_tls_address(self) -> str:
        return f"mqtts://{HOST}:{self.mqtt_tls_port}"

    @property
    def influx_url(self) -> str:
        return f"http://{HOST}:{self.influx_http_port}"


@dataclass
class ServerStatus:
    name: str
    address: str
    pid: int | None
    running: bool
    answering: bool


class LocalStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.stack_dir
        self.state_path = self.dir / STATE_FILE_NAME
        self.settings_path = self.dir / STACK_FILE_NAME
        self.bridges_dir = self.dir / BRIDGES_DIR_NAME
        self.tls = TlsFiles(self.dir / TLS_DIR_NAME)
        self.tls_env_path = self.dir / TLS_ENV_FILE_NAME

    def read_state(self) -> StackState | None:
        try:
            return StackState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def is_up(self) -> bool:
        return all(s.running and s.answering for s in self.status())

    def up(self) -> tuple[StackState, bool]:
        """Start whatever is not running; returns the state and whether anything was started."""
        previous = self.read_state()
        if previous is not None and self.is_up():
            return previous, False
        self.down()  # half a stack (one server died) is restarted whole
        mosquitto_bin = find_mosquitto(self.settings.mosquitto_bin)
        influxd_bin = find_influxd(self.settings.influxd_bin)
        # Keep the ports of the last run where they are still free, so dashboards stay pointed right.
        mqtt_port = _pick_port(previous.mqtt_port if previous else 1883)
        previous_tls = previous.mqtt_tls_port if previous else None
        tls_port = _pick_port(previous_tls or 8883, taken={mqtt_port})
        http_port = _pick_port(previous.influx_http_port if previous else 8086)
        rpc_port = _pick_port(previous.influx_rpc_port if previous else 8088)
        private_dir(self.dir)
        ensure_certificates(self.tls.directory)
        accounts = self.accounts()
        plugin = find_dynsec_plugin(self.settings.mosquitto_dynsec_plugin)
        mosquitto = MosquittoServer(
            mosquitto_bin,
            self.dir / "mosquitto",
            mqtt_port,
            accounts["admin"],
            plugin,
            HOST,
            bridges_dir=self.bridges_dir,
            tls=(tls_port, self.tls),
        )
        # Auth on, as in production: an admin, ingest's writer and a read-only reader.
        influxd = InfluxdServer(
            influxd_bin, self.dir / "influxdb", http_port, rpc_port, HOST, auth=True
        )
        mosquitto.start(detach=True)
        try:
            influxd.start(detach=True)
            secure_storage(
                self.settings.influx.model_copy(update={"url": f"http://{HOST}:{http_port}"}),
                accounts["influx-admin"],
                accounts["influx-writer"],
                accounts["influx-reader"],
            )
        except Exception:
            mosquitto.stop()
            influxd.stop()
            raise
        assert mosquitto.pid is not None
        assert influxd.pid is not None
        mqtt = self.settings.mqtt.model_copy(
            update={
                "host": HOST,
                "port": mqtt_port,
                "username": accounts["ingest"][0],
                "password": SecretStr(accounts["ingest"][1]),
                "simulator_username": accounts["simulator"][0],
                "simulator_password": SecretStr(accounts["simulator"][1]),
                "admin_username": accounts["admin"][0],
            }
        )
        with Dynsec(mqtt, accounts["admin"]) as dynsec:
            dynsec.ensure_service_accounts(mqtt)
        state = StackState(mosquitto.pid, mqtt_port, influxd.pid, http_port, rpc_port, tls_port)
        write_private_text(self.state_path, json.dumps(asdict(state), indent=2) + "\n")
        self._write_settings(state, accounts)
        write_private_text(
            self.tls_env_path,
            f"SMARTPLACE_MQTT__PORT={tls_port}\n"
            f"SMARTPLACE_MQTT__TLS_CA_FILE={shlex.quote(str(self.tls.ca_cert.resolve()))}\n",
        )
        return state, True

    def device_mqtt(self, mqtt: MqttSettings, state: StackState) -> MqttSettings:
        """``mqtt`` as a device reaches this stack's broker: by its TLS listener."""
        return mqtt.model_copy(
            update={"host": HOST, "port": state.mqtt_tls_port, "tls_ca_file": self.tls.ca_cert}
        )

    def accounts(self) -> dict[str, tuple[str, str]]:
        """The local stack's MQTT and InfluxDB accounts, made once with random passwords and
        kept (mode 0600); accounts a newer smartplace added are made on the next start."""
        path = self.dir / "credentials.json"
        stored: dict[str, tuple[str, str]] = {}
        if path.is_file():
            stored = {
                role: (user, password)
                for role, (user, password) in json.loads(path.read_text()).items()
            }
        names = {
            "admin": ADMIN_USERNAME,
            "ingest": INGEST_USERNAME,
            "simulator": SIMULATOR_USERNAME,
            "influx-admin": ADMIN_USERNAME,
            "influx-writer": INGEST_USERNAME,
            "influx-reader": INFLUX_READER_USERNAME,
        }
        missing = {
            role: (name, secrets.token_urlsafe(18))
            for role, name in names.items()
            if role not in stored
        }
        if missing or path.is_file():
            private_dir(self.dir)
        if missing:
            stored |= missing
            write_private_text(path, json.dumps(stored, indent=2) + "\n")
        else:
            path.chmod(0o600)
        return stored

    def _write_settings(self, state: StackState, accounts: dict[str, tuple[str, str]]) -> None:
        (admin, admin_pw), (ingest, ingest_pw), (simulator, simulator_pw) = (
            accounts["admin"],
            accounts["ingest"],
            accounts["simulator"],
        )
        (writer, writer_pw), (reader, reader_pw) = (
            accounts["influx-writer"],
            accounts["influx-reader"],
        )
        write_private_text(
            self.settings_path,
            "# Written by 'smartplace up': where the local stack listens and how to log in.\n"
            "# Every smartplace command run from this folder reads it (lowest precedence).\n"
            "# ingest, the admin and the other commands use the plain listener, on loopback;\n"
            f"# devices its TLS listener, on port {state.mqtt_tls_port} ({TLS_ENV_FILE_NAME}).\n"
            f'[mqtt]\nhost = "{HOST}"\nport = {state.mqtt_port}\n'
            f'username = "{ingest}"\npassword = "{ingest_pw}"\n'
            f'simulator_username = "{simulator}"\nsimulator_password = "{simulator_pw}"\n'
            f'admin_username = "{admin}"\nadmin_password = "{admin_pw}"\n\n'
            f'[influx]\nurl = "{state.influx_url}"\n'
            "# 'smartplace up' made the database: ingest's writer reads and writes it, no admin.\n"
            "create_database = false\n"
            f'username = "{writer}"\npassword = "{writer_pw}"\n'
            f'reader_username = "{reader}"\nreader_password = "{reader_pw}"\n',
        )

    def status(self) -> list[ServerStatus]:
        state = self.read_state()
        if state is None:
            return [
                ServerStatus("mosquitto", "-", None, False, False),
                ServerStatus("mosquitto TLS", "-", None, False, False),
                ServerStatus("influxd", "-", None, False, False),
            ]
        mosquitto_running = pid_is_running(state.mosquitto_pid, "mosquitto")
        tls_port = state.mqtt_tls_port
        return [
            ServerStatus(
                "mosquitto",
                state.mqtt_address,
                state.mosquitto_pid,
                mosquitto_running,
                mqtt_answers(HOST, state.mqtt_port),
            ),
            ServerStatus(
                "mosquitto TLS",
                "-" if tls_port is None else state.mqtt_tls_address,
                state.mosquitto_pid,
                mosquitto_running and tls_port is not None,
                tls_port is not None
                and self.tls.ca_cert.is_file()
                and mqtt_answers(HOST, tls_port, self.tls.ca_cert),
            ),
            ServerStatus(
                "influxd",
                state.influx_url,
                state.influxd_pid,
                pid_is_running(state.influxd_pid, "influxd"),
                influx_answers(state.influx_url),
            ),
        ]

    def down(self) -> bool:
        """Stop both servers; True when anything was running. Data is kept."""
        state = self.read_state()
        if state is None:
            return False
        was_running = pid_is_running(state.mosquitto_pid, "mosquitto") or pid_is_running(
            state.influxd_pid, "influxd"
        )
        terminate_pid(state.influxd_pid, "influxd")
        terminate_pid(state.mosquitto_pid, "mosquitto")
        self.settings_path.unlink(missing_ok=True)
        self.tls_env_path.unlink(missing_ok=True)
        return was_running


def _pick_port(preferred: int, taken: set[int] | None = None) -> int:
    if preferred not in (taken or set()) and port_is_free(preferred, HOST):
        return preferred
    return free_port(HOST)
