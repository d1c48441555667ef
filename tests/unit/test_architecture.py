"""Ingest's stages, checked: each is a package, and imports run one way only (pyproject.toml's
import-linter contracts)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["receive", "decode", "check", "windows", "write"]


def test_each_stage_is_a_package_of_ingest() -> None:
    ingest = ROOT / "smartplace" / "ingest"
    assert all((ingest / stage / "__init__.py").is_file() for stage in STAGES)


def test_the_contract_lists_the_stages_latest_first() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")
    assert layers["layers"] == list(reversed(STAGES))


def test_no_stage_imports_a_later_one_or_what_runs_it() -> None:
    # In its own process: import-linter disables every logger already made, which would
    # blind the caplog tests that run after this one.
    linter = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(linter), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
