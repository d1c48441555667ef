"""The smartplace command as a person runs it: real processes, real output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from smartplace.stack import InfluxdServer, MosquittoServer

pytestmark = pytest.mark.integration

TLS_FILES = ("ca.crt", "ca.key", "server.crt", "server.key")


def smartplace(
    stack_dir: Path, *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SMARTPLACE_STACK_DIR": str(stack_dir),
        "SMARTPLACE_REGISTRY_FILE": str(stack_dir / "registry.db"),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "smartplace", *args],
        cwd=stack_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_up_status_and_stop_manage_a_detached_local_stack(
    tmp_path: Path, mosquitto: MosquittoServer, influxd: InfluxdServer
) -> None:
    stack_dir = tmp_path / ".smartplace"
    try:
        started = smartplace(stack_dir, "up")
        assert started.returncode == 0, started.stderr
        assert "Started the local stack." in started.stdout
        assert "mqtt://127.0.0.1:" in started.stdout
        assert "http://127.0.0.1:" in started.stdout
        assert (stack_dir / "stack.toml").is_file()
        state = json.loads((stack_dir / "state.json").read_text())
        tls_port, ca = state["mqtt_tls_port"], (stack_dir / "tls" / "ca.crt").resolve()
        assert (
            f"Devices connect over TLS to mqtts://127.0.0.1:{tls_port}, trusting the CA {ca}:"
            in " ".join(started.stdout.split())
        )
        assert (stack_dir / "tls.env").read_text() == (
            f"SMARTPLACE_MQTT__PORT={tls_port}\nSMARTPLACE_MQTT__TLS_CA_FILE={ca}\n"
        )
        issued = {name: (stack_dir / "tls" / name).read_bytes() for name in TLS_FILES}

        again = smartplace(stack_dir, "up")
        assert "already running" in again.stdout

        status = smartplace(stack_dir, "up", "--status")
        assert status.returncode == 0
        # mosquitto's two listeners and influxd, each running and answering
        assert status.stdout.count("yes") == 6
        assert f"mqtts://127.0.0.1:{tls_port}" in status.stdout
    finally:
        stopped = smartplace(stack_dir, "up", "--stop")
    assert "Stopped the local stack." in stopped.stdout
    down = smartplace(stack_dir, "up", "--status")
    assert down.returncode == 3
    assert (stack_dir / "influxdb" / "meta").is_dir()  # data stays for the next 'up'
    assert not (stack_dir / "tls.env").exists()  # it points at a stopped broker
    try:  # the certificates too: devices given the CA keep trusting the broker
        assert smartplace(stack_dir, "up").returncode == 0
        assert {name: (stack_dir / "tls" / name).read_bytes() for name in TLS_FILES} == issued
    finally:
        smartplace(stack_dir, "up", "--stop")


def test_up_refuses_a_bridge_file_mosquitto_refuses_and_names_it(
    tmp_path: Path, mosquitto: MosquittoServer, influxd: InfluxdServer
) -> None:
    stack_dir = tmp_path / ".smartplace"
    (stack_dir / "bridges").mkdir(parents=True)
    (stack_dir / "bridges" / "typo.conf").write_text("connection tts-bins\nadress h:8883\n")
    try:
        result = smartplace(stack_dir, "up")
    finally:
        smartplace(stack_dir, "up", "--stop")
    stderr = " ".join(result.stderr.split())  # as one line, however the terminal wrapped it
    assert result.returncode == 1
    assert stderr.startswith("error: mosquitto exited with code 3 while starting")
    assert 'Unknown configuration variable "adress"' in stderr
    assert f"Error found at {stack_dir}/bridges/typo.conf:2." in stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_demo_runs_the_whole_loop_and_reports_what_landed(
    tmp_path: Path, mosquitto: MosquittoServer, influxd: InfluxdServer
) -> None:
    stack_dir = tmp_path / ".smartplace"
    result = smartplace(
        stack_dir, "demo", "--duration-s", "4", "--devices", "10", "--interval-s", "0.5"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(
        r"broker   mqtt://127\.0\.0\.1:\d+ \(ingest\), mqtts://127\.0\.0\.1:\d+ \(devices: TLS\)",
        out,
    ), out
    assert "raw.air_quality" in out
    assert "agg.air_quality_1m" in out
    summary = re.search(r"Published (\d+); ingest accepted (\d+), rejected 0\.", out)
    assert summary, out
    assert int(summary[1]) == int(summary[2]) >= 70  # 10 devices x 8 ticks, give or take a tick
    assert "Stopped the local stack" in out
    assert not (stack_dir / "stack.toml").exists()


def test_errors_are_one_line_with_what_to_do(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SMARTPLACE_STACK_DIR": str(tmp_path / ".smartplace"),
        "SMARTPLACE_MQTT__PORT": "1",  # nothing listens there
    }
    result = subprocess.run(
        [sys.executable, "-m", "smartplace", "simulate", "--duration-s", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the MQTT broker at mqtt://127.0.0.1:1")
    assert "Traceback" not in result.stderr
