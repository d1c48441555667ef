"""CI runs the README's test command at full strength, whatever the runner sets."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CI_RUN = Path(__file__).parents[2] / ".ci" / "run"


@pytest.mark.parametrize(("runner_ci", "seen"), [(None, "true"), ("", "true"), ("1", "1")])
def test_ci_run_calls_scripts_test_with_ci_set(
    tmp_path: Path, runner_ci: str | None, seen: str
) -> None:
    # A copy of .ci/run beside a scripts/test that only says what it was given.
    (tmp_path / ".ci").mkdir()
    shutil.copy2(CI_RUN, tmp_path / ".ci" / "run")
    (tmp_path / "scripts").mkdir()
    stand_in = tmp_path / "scripts" / "test"
    stand_in.write_text('#!/usr/bin/env bash\necho "CI=${CI-unset} args=$*"\n')
    stand_in.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if runner_ci is not None:
        env["CI"] = runner_ci
    done = subprocess.run(
        [tmp_path / ".ci" / "run"], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout == f"CI={seen} args=\n"
