"""Start, probe and stop one server process (mosquitto or influxd).

Used by the test harness (child processes that die with the session) and by
``smartplace up`` (detached processes that outlive the command). It never
picks ports or writes server configs itself: the server modules do that.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

from smartplace.errors import ServerStartError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now, for a server about to start."""
    return free_port_block(1, host)


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive free TCP ports (for workers on port + N).

    Chosen outside the kernel's ephemeral range, so no outgoing connection can
    take one of them between this check and the moment the caller's server
    binds it (a port the kernel hands out for bind(0) is ephemeral, and was
    once taken that way in CI).
    """
    low, high = _ephemeral_range()
    if low - count > _LOWEST_PICKED_PORT:
        starts = range(_LOWEST_PICKED_PORT, low - count)
    else:
        starts = range(high + 1, 65_536 - count)
    for _ in range(200):
        start = secrets.choice(starts)
        block = range(start, start + count)
        # Not one handed out already: its server may not have bound it yet.
        if _handed_out.isdisjoint(block) and all(port_is_free(p, host) for p in block):
            _handed_out.update(block)
            return start
    raise OSError(f"no {count} consecutive free ports outside {low}-{high} on {host}")


_LOWEST_PICKED_PORT = 20_000
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pid_is_running(pid: int, binary_name: str) -> bool:
    """True when ``pid`` is alive and runs ``binary_name`` (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # a zombie has exited already
        return False
    argv0 = cmdline.split(b"\0", 1)[0].decode(errors="replace")
    return Path(argv0).name == binary_name


def terminate_pid(pid: int, binary_name: str, timeout_s: float = 15.0) -> None:
    """SIGTERM, wait, then SIGKILL a process this stack started earlier."""
    if not pid_is_running(pid, binary_name):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_is_running(pid, binary_name):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def server_environment() -> dict[str, str]:
    """This process's environment without smartplace's settings, which may hold passwords:
    a server needs none of them, and a process's environment outlives the command."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SMARTPLACE_")}


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class ServerProcess(ABC):
    """One server: prepare its files, start it, wait until it answers, stop it."""

    name: str
    binary: Path
    log_path: Path

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    @abstractmethod
    def prepare(self) -> None:
        """Write the config file and create data directories."""

    @abstractmethod
    def argv(self) -> list[str]:
        """The command line that starts the server with its prepared config."""

    @abstractmethod
    def is_ready(self) -> bool:
        """True once the server answers its protocol (not just an open port)."""

    @abstractmethod
    def describe(self) -> str:
        """Where the server listens, for people."""

    def start(self, *, detach: bool = False, ready_timeout_s: float = 30.0) -> None:
        """Start the server and return once it is ready.

        ``detach`` puts it in its own session so it outlives this process
        (``smartplace up``); otherwise it is our child and dies with stop().
        """
        self.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv(),
                env=server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        self.pid = self._process.pid
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self._process.returncode} while starting; "
                    f"its log ({self.log_path}) ends with:\n{tail(self.log_path)}"
                )
            if self.is_ready():
                return
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(
            f"{self.name} did not become ready within {ready_timeout_s:.0f} s; "
            f"its log ({self.log_path}) ends with:\n{tail(self.log_path)}"
        )

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop gracefully (SIGTERM), killing it if it does not exit in time."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class PeakMemory:
    """A process's peak resident memory, read from /proc until it exits.

    Alone, its VmHWM (the kernel's own high-water mark). With child processes
    (ingest's workers), the largest sum of their resident memory (VmRSS) seen
    at one poll: a sampled peak, which a spike shorter than the interval can
    slip past.

    For the chaos suite, the benchmarks and the export test, which must state a
    bound and show they kept to it.
    """

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.high_water_kib = 0
        self.joint_peak_kib = 0
        self.processes_seen = 1
        self._interval_s = interval_s
        threading.Thread(target=self._watch, name=f"peak-memory-{pid}", daemon=True).start()

    @property
    def peak_kib(self) -> int:
        return self.high_water_kib if self.processes_seen == 1 else self.joint_peak_kib

    def _watch(self) -> None:
        while True:
            tree = [self.pid, *descendants(self.pid)]
            self.processes_seen = max(self.processes_seen, len(tree))
            resident = 0
            for pid in tree:
                try:
                    text = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    if pid == self.pid:
                        return  # the process is gone
                    continue
                if pid == self.pid:
                    if "State:\tZ" in text:
                        return
                    self.high_water_kib = max(self.high_water_kib, _status_kib(text, "VmHWM:"))
                resident += _status_kib(text, "VmRSS:")
            self.joint_peak_kib = max(self.joint_peak_kib, resident)
            time.sleep(self._interval_s)

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, theirs, ...), as /proc lists them now."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def _status_kib(status: str, key: str) -> int:
    for line in status.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0
