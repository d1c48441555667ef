"""A real stack as an attacker finds it: ``smartplace up`` (mosquitto with dynamic security,
influxd with auth), devices provisioned through the CLI, ``smartplace ingest`` as a process.

Started once per module in a temp dir of its own, and stopped at the end. While the first
``smartplace up`` runs, every process's command line, and the environment of every process
it starts, is watched for the stack's secrets; ``mosquitto_ctrl`` is wrapped so that its
argv is recorded however briefly it lives.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from smartplace.stack.mosquitto import find_dynsec_plugin, find_mosquitto
from smartplace.stack.process import descendants, free_port
from tests.conftest import _binary

ROLES = ("admin", "ingest", "simulator", "influx-admin", "influx-writer", "influx-reader")
NAMES = {
    "admin": "smartplace-admin",
    "ingest": "smartplace-ingest",
    "simulator": "smartplace-simulator",
    "influx-admin": "smartplace-admin",
    "influx-writer": "smartplace-ingest",
    "influx-reader": "smartplace-reader",
}


@dataclass
class ProcSighting:
    """A secret seen in a process's command line or environment."""

    pid: int
    where: str
    role: str


@dataclass
class WatchedUp:
    """What was seen of every process while ``smartplace up`` ran."""

    sightings: list[ProcSighting] = field(default_factory=list)
    pids_seen: set[int] = field(default_factory=set)
    ctrl_calls: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Stack:
    dir: Path
    stack_dir: Path
    env: dict[str, str]
    credentials: dict[str, tuple[str, str]]
    watched: WatchedUp
    mqtt_port: int
    influx_url: str

    def cli(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smartplace", *args],
            env=self.env,
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def password(self, role: str) -> str:
        return self.credentials[role][1]


def _scan(secrets_by_role: dict[str, str], up_pid: int, watched: WatchedUp) -> None:
    """One look at every process: its command line; its environment when ``up`` started it."""
    ours = {up_pid, *descendants(up_pid)}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        places = ["cmdline", "environ"] if pid in ours else ["cmdline"]
        for where in places:
            try:
                text = (entry / where).read_bytes()
            except OSError:
                continue
            if pid in ours:
                watched.pids_seen.add(pid)
            for role, secret in secrets_by_role.items():
                if secret.encode() in text:
                    watched.sightings.append(ProcSighting(pid, where, role))


def _ctrl_wrapper(bin_dir: Path, record: Path) -> None:
    """A mosquitto_ctrl on PATH that records its argv and environment, then runs the real one."""
    real = "/usr/bin/mosquitto_ctrl"
    script = bin_dir / "mosquitto_ctrl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'argv': sys.argv, 'environ': dict(os.environ)}) + '\\n')\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    script.chmod(0o700)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _binary(find_mosquitto, "SMARTPLACE_MOSQUITTO_BIN")
    _binary(find_dynsec_plugin, "SMARTPLACE_MOSQUITTO_DYNSEC_PLUGIN")
    work = tmp_path_factory.mktemp("security-stack")
    stack_dir = work / ".smartplace"
    bin_dir = work / "bin"
    bin_dir.mkdir()
    record = work / "mosquitto_ctrl-calls.jsonl"
    _ctrl_wrapper(bin_dir, record)
    # Known secrets, so that they can be looked for while 'up' runs ('up' keeps an existing file).
    credentials = {role: (NAMES[role], secrets.token_urlsafe(18)) for role in ROLES}
    stack_dir.mkdir(mode=0o700)
    fd = os.open(stack_dir / "credentials.json", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(credentials, handle)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SMARTPLACE_")},
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SMARTPLACE_STACK_DIR": str(stack_dir),
        "SMARTPLACE_REGISTRY_FILE": str(stack_dir / "registry.db"),
        "COLUMNS": "200",
    }
    watched = WatchedUp()
    by_role = {role: password for role, (_user, password) in credentials.items()}
    up = subprocess.Popen(
        [sys.executable, "-m", "smartplace", "up"],
        env=env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    while up.poll() is None:
        _scan(by_role, up.pid, watched)
        time.sleep(0.005)  # short-lived ones (mosquitto_ctrl) are caught by its wrapper
    output = up.stdout.read().decode() if up.stdout else ""
    assert up.returncode == 0, output
    state = json.loads((stack_dir / "state.json").read_text())
    for pid in (state["mosquitto_pid"], state["influxd_pid"]):
        _scan(by_role, pid, watched)  # the servers, now detached, and their environment
        watched.pids_seen.add(pid)
    watched.ctrl_calls = [json.loads(line) for line in record.read_text().splitlines()]
    result = Stack(
        work,
        stack_dir,
        env,
        credentials,
        watched,
        state["mqtt_port"],
        f"http://127.0.0.1:{state['influx_http_port']}",
    )
    yield result
    result.cli("up", "--stop")


@dataclass
class Connack:
    reason: ReasonCode
    session_present: bool


def connect_as(
    port: int, username: str, password: str, client_id: str, *, clean_start: bool
) -> Connack:
    """One CONNECT (MQTT 5) and the broker's CONNACK; disconnects at once when accepted.

    It never subscribes and has no on_message: were a session given to it, what the
    broker sent would be counted by the caller as lost, which is the point.
    """
    answer: list[Connack] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.username_pw_set(username, password)
    client.on_connect = lambda _c, _u, flags, reason, _p: answer.append(
        Connack(reason, bool(flags.session_present))
    )
    client.connect("127.0.0.1", port, keepalive=10, clean_start=clean_start)
    deadline = time.monotonic() + 10
    while not answer and time.monotonic() < deadline:
        client.loop(timeout=0.05)
    client.disconnect()
    client.loop(timeout=0.05)
    assert answer, f"no CONNACK for {username} as {client_id}"
    return answer[0]


class IngestRun:
    """``smartplace ingest`` as a child process in the stack's folder (it reads stack.toml)."""

    def __init__(self, stack: Stack) -> None:
        self.http_port = free_port()
        self.env = {**stack.env, "SMARTPLACE_INGEST__HTTP_PORT": str(self.http_port)}
        self.stack = stack
        self.log_path = stack.dir / "ingest.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "smartplace", "ingest"],
                env=self.env,
                cwd=self.stack.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"ingest exited\n{self.log_tail()}"
            try:
                metrics = httpx.get(f"http://127.0.0.1:{self.http_port}/metrics", timeout=2).text
            except httpx.HTTPError:
                metrics = ""
            if "smartplace_ingest_mqtt_connected 1.0" in metrics:
                return
            time.sleep(0.1)
        raise AssertionError(f"ingest did not connect within 60 s\n{self.log_tail()}")

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
