"""ejabberd's MQTT 5 server (mod_mqtt) for tests: a second real broker implementation beside
mosquitto, one that grants a shorter session than asked (its session_expiry, 300 s unless
configured) and sends a message over the client's Maximum Packet Size instead of dropping it.

Started as a bare Erlang VM, not through ejabberdctl: no node name, so no epmd and no
distribution port; only the MQTT listener, on a free 127.0.0.1 port, with its database,
logs and configuration in a temporary directory. Anonymous login: any user name and password
is let in (the point is the broker's MQTT behaviour, not its accounts).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from smartplace.errors import ServerNotFoundError, ServerStartError

ERLANG_LIBS = Path("/usr/lib/x86_64-linux-gnu")
"""Where Debian's ejabberd package puts its Erlang applications (ejabberd-23.01 and friends)."""

CONFIG = """\
hosts:
  - localhost
loglevel: info
certfiles: []
auth_method: [anonymous]
anonymous_protocol: login_anon
listen:
  -
    port: {port}
    ip: "127.0.0.1"
    module: mod_mqtt
modules:
  mod_mqtt:
    session_expiry: {session_expiry_s}
"""


def find_ejabberd() -> Path:
    """The Erlang VM to run ejabberd in; ServerNotFoundError without Debian's ejabberd."""
    erl = shutil.which("erl")
    if erl is None or not any(ERLANG_LIBS.glob("ejabberd-*")):
        raise ServerNotFoundError(
            "ejabberd is not installed (Debian: apt-get install ejabberd; scripts/setup does)"
        )
    return Path(erl)


class EjabberdServer:
    def __init__(self, erl: Path, directory: Path, port: int, session_expiry_s: int) -> None:
        self.erl, self.directory, self.port = erl, directory, port
        self.session_expiry_s = session_expiry_s
        self.log_path = directory / "ejabberd.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        config = self.directory / "ejabberd.yml"
        config.write_text(CONFIG.format(port=self.port, session_expiry_s=self.session_expiry_s))
        (self.directory / "db").mkdir(exist_ok=True)
        env = {
            **os.environ,
            "EJABBERD_CONFIG_PATH": str(config),
            "EJABBERD_LOG_PATH": str(self.log_path),
            "ERL_LIBS": str(ERLANG_LIBS),
            "ERL_CRASH_DUMP": str(self.directory / "erl_crash.dump"),
            "HOME": str(self.directory),
        }
        with (self.directory / "stdout.log").open("wb") as out:
            self._process = subprocess.Popen(
                [
                    str(self.erl),
                    "-noinput",
                    "-noshell",
                    "-mnesia",
                    "dir",
                    f'"{self.directory / "db"}"',
                    "-s",
                    "ejabberd",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped whole
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerStartError(f"ejabberd exited at start:\n{self.log_tail(30)}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(
            f"ejabberd did not listen within {timeout_s} s:\n{self.log_tail(30)}"
        )

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def log_tail(self, lines: int) -> str:
        text = ""
        for path in (self.directory / "stdout.log", self.log_path):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text
