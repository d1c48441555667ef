"""The local demo stack behind ``smartplace up``: a broker and a database under ./.smartplace/.

The servers run detached, so they outlive the command; their pids and ports
are kept in ``state.json``, and ``stack.toml`` tells every other smartplace
command where they listen. Data stays between runs.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass

from pydantic import SecretStr

from smartplace.config import STACK_FILE_NAME, Settings
from smartplace.devices.dynsec import Dynsec
from smartplace.stack.influxd import InfluxdServer, find_influxd, influx_answers
from smartplace.stack.mosquitto import (
    MosquittoServer,
    find_dynsec_plugin,
    find_mosquitto,
    mqtt_answers,
)
from smartplace.stack.process import free_port, pid_is_running, port_is_free, terminate_pid

HOST = "127.0.0.1"
STATE_FILE_NAME = "state.json"


@dataclass
class StackState:
    mosquitto_pid: int
    mqtt_port: int
    influxd_pid: int
    influx_http_port: int
    influx_rpc_port: int

    @property
    def mqtt_address(self) -> str:
        return f"mqtt://{HOST}:{self.mqtt_port}"

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
        http_port = _pick_port(previous.influx_http_port if previous else 8086)
        rpc_port = _pick_port(previous.influx_rpc_port if previous else 8088)
        accounts = self.accounts()
        plugin = find_dynsec_plugin(self.settings.mosquitto_dynsec_plugin)
        mosquitto = MosquittoServer(
            mosquitto_bin, self.dir / "mosquitto", mqtt_port, accounts["admin"], plugin, HOST
        )
        influxd = InfluxdServer(influxd_bin, self.dir / "influxdb", http_port, rpc_port, HOST)
        mosquitto.start(detach=True)
        try:
            influxd.start(detach=True)
        except Exception:
            mosquitto.stop()
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
        state = StackState(mosquitto.pid, mqtt_port, influxd.pid, http_port, rpc_port)
        self.state_path.write_text(json.dumps(asdict(state), indent=2) + "\n")
        self._write_settings(state, accounts)
        return state, True

    def accounts(self) -> dict[str, tuple[str, str]]:
        """The local stack's MQTT accounts, made once with random passwords and kept (mode 0600)."""
        path = self.dir / "credentials.json"
        if path.is_file():
            stored = json.loads(path.read_text())
            return {role: (user, password) for role, (user, password) in stored.items()}
        accounts = {
            "admin": ("smartplace-admin", secrets.token_urlsafe(18)),
            "ingest": ("smartplace-ingest", secrets.token_urlsafe(18)),
            "simulator": ("smartplace-simulator", secrets.token_urlsafe(18)),
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(accounts, indent=2) + "\n")
        return accounts

    def _write_settings(self, state: StackState, accounts: dict[str, tuple[str, str]]) -> None:
        (admin, admin_pw), (ingest, ingest_pw), (simulator, simulator_pw) = (
            accounts["admin"],
            accounts["ingest"],
            accounts["simulator"],
        )
        self.settings_path.touch(mode=0o600)
        self.settings_path.write_text(
            "# Written by 'smartplace up': where the local stack listens and how to log in.\n"
            "# Every smartplace command run from this folder reads it (lowest precedence).\n"
            f'[mqtt]\nhost = "{HOST}"\nport = {state.mqtt_port}\n'
            f'username = "{ingest}"\npassword = "{ingest_pw}"\n'
            f'simulator_username = "{simulator}"\nsimulator_password = "{simulator_pw}"\n'
            f'admin_username = "{admin}"\nadmin_password = "{admin_pw}"\n\n'
            f'[influx]\nurl = "{state.influx_url}"\n'
        )

    def status(self) -> list[ServerStatus]:
        state = self.read_state()
        if state is None:
            return [
                ServerStatus("mosquitto", "-", None, False, False),
                ServerStatus("influxd", "-", None, False, False),
            ]
        return [
            ServerStatus(
                "mosquitto",
                state.mqtt_address,
                state.mosquitto_pid,
                pid_is_running(state.mosquitto_pid, "mosquitto"),
                mqtt_answers(HOST, state.mqtt_port),
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
        return was_running


def _pick_port(preferred: int) -> int:
    return preferred if port_is_free(preferred, HOST) else free_port(HOST)
