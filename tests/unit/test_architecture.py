"""Ingest's stages, checked: each is a package, and imports run one way only (pyproject.toml's
import-linter contracts)."""

from __future__ import annotations

import ast
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


def _imports_by_name(source: str) -> list[str]:
    """Calls that import a module named at run time, which import-linter cannot see."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "importlib":
            found += [
                f"from importlib import {a.name}" for a in node.names if a.name != "resources"
            ]
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in ("__import__", "importlib.import_module", "importlib.__import__"):
                found.append(f"{name}(...)")
    return found


def test_no_stage_imports_a_module_by_name_where_the_contract_cannot_see() -> None:
    # import-linter reads import statements (lazy ones in functions and TYPE_CHECKING ones
    # too) but not importlib.import_module("smartplace.ingest.write"), which would break
    # the stages' order unseen.
    ingest = ROOT / "smartplace" / "ingest"
    found = {
        str(path.relative_to(ROOT)): calls
        for stage in STAGES
        for path in sorted((ingest / stage).rglob("*.py"))
        if (calls := _imports_by_name(path.read_text()))
    }
    assert found == {}


def test_imports_by_name_are_found() -> None:
    source = (
        "import importlib\ndef f():\n    return importlib.import_module('x'), __import__('y')\n"
    )
    assert _imports_by_name(source) == ["importlib.import_module(...)", "__import__(...)"]
    assert _imports_by_name("from importlib import import_module\n") == [
        "from importlib import import_module"
    ]
