"""A setting that does not validate ends any command in one line that names it, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPLACE_")}
    return subprocess.run(
        [sys.executable, "-m", "smartplace", *args],
        env={**clean, "SMARTPLACE_STACK_DIR": str(tmp_path / "stack"), "COLUMNS": "1000", **env},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [("dashboards", "build", "--out", "out"), ("devices", "list")],
)
def test_an_invalid_setting_is_one_line_naming_its_variable(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = _run(tmp_path, {"SMARTPLACE_INFLUX__RAW_RETENTION_POLICY": 'r"x'}, *args)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: setting influx.raw_retention_policy (SMARTPLACE_INFLUX__RAW_RETENTION_POLICY):"
        " String should match pattern '^[A-Za-z0-9_-]+$', not 'r\"x'\n"
    )
    assert not (tmp_path / "out").exists()


def test_every_invalid_setting_is_named(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        {"SMARTPLACE_INFLUX__RAW_RETENTION_POLICY": "", "SMARTPLACE_MQTT__PORT": "port"},
        "dashboards", "build", "--out", "out",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "error: setting mqtt.port (SMARTPLACE_MQTT__PORT): Input should be a valid integer,"
        " unable to parse string as an integer, not 'port'; setting influx.raw_retention_policy"
        " (SMARTPLACE_INFLUX__RAW_RETENTION_POLICY): String should match pattern"
        " '^[A-Za-z0-9_-]+$', not ''\n"
    )
