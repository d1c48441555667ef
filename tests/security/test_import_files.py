"""``devices import --plan`` with hostile files: one line of error, exit 1, no traceback.

- a header naming ``device_id`` twice was read as its last copy, so a file whose first
  column a reviewer reads as ``aq-0001`` added the device of the second (``aq-0002``, or a
  service's name, refused only by luck of the reserved check);
- a cell over the csv module's 128 KiB limit printed ``_csv.Error`` with a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.security]


def _plan(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "fleet.csv"
    source.write_text(body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTPLACE_")}
    env |= {
        "SMARTPLACE_STACK_DIR": str(tmp_path / ".smartplace"),
        "SMARTPLACE_REGISTRY_FILE": str(tmp_path / "registry.db"),
        "COLUMNS": "1000",
    }
    return subprocess.run(
        [sys.executable, "-m", "smartplace", "devices", "import", str(source), "--plan"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            "device_id,kind,device_id\naq-0001,air_quality,aq-0002\n",
            "the header row names device_id more than once",
        ),
        (
            "device_id,kind,x\naq-0001,air_quality," + "y" * 200_000 + "\n",
            "cannot be read as CSV: field larger than field limit (131072)",
        ),
    ],
    ids=["column-twice", "huge-cell"],
)
def test_a_hostile_import_file_is_refused_in_one_line(
    tmp_path: Path, body: str, error: str
) -> None:
    done = _plan(tmp_path, body)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    source = tmp_path / "fleet.csv"
    separator = ": " if error.startswith("the") else " "
    assert done.stderr.strip() == f"error: {source}{separator}{error}"
    assert done.stdout == ""
