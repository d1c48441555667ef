"""What the devices commands refuse before touching the registry or the broker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartplace.cli import app
from smartplace.devices.model import DeviceRecord
from smartplace.devices.registry import MIGRATIONS, Registry, hash_secret, verify_secret
from smartplace.errors import SmartplaceError

runner = CliRunner()


@pytest.mark.parametrize(
    "device_id",
    [
        "aq 0001",
        "aq,0001",
        "aq=0001",
        "aq/0001",
        "aq+0001",
        "aq#0001",
        'aq"0001',
        "aq'0001",
        "aq-caf\u00e9",
        "AQ-0001",
        "ab",
        "aq-0001\n",  # Python's $ matches before a final newline
    ],
)
def test_add_refuses_ids_that_could_break_topics_or_tags(device_id: str) -> None:
    result = runner.invoke(app, ["devices", "add", device_id, "--kind", "air_quality"])
    assert result.exit_code != 0
    assert isinstance(result.exception, SmartplaceError)
    assert str(result.exception) == (
        f"device id {device_id!r} is not allowed: use 3-64 characters from a-z, 0-9 and '-', "
        "starting with a letter or digit"
    )
    assert not Path(os.environ["SMARTPLACE_REGISTRY_FILE"]).exists()  # refused before any change


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "weather"], "kind 'weather' is not one of air_quality, footfall, bin"),
        (
            ["--kind", "bin", "--latitude", "91"],
            "latitude: Input should be less than or equal to 90",
        ),
        (
            ["--kind", "bin", "--site", "Mersey Square"],
            "site 'Mersey Square' is not allowed: use 2-64 characters from a-z, 0-9 and '-'",
        ),
        (
            ["--kind", "bin", "--site", "mersey-square\n"],
            "site 'mersey-square\\n' is not allowed: use 2-64 characters from a-z, 0-9 and '-'",
        ),
        (
            ["--kind", "bin", "--profile", "acme-9000"],
            "profile 'acme-9000' is not one of milesight-em310-udl, milesight-vs133",
        ),
        (["--kind", "bin", "--meta", "depth"], "--meta 'depth': expected KEY=VALUE"),
    ],
)
def test_add_explains_other_bad_fields(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["devices", "add", "bin-0001", *args])
    assert result.exit_code != 0
    assert str(result.exception).startswith(message)


def test_registry_migrates_a_new_file_to_the_latest_schema_and_hashes_secrets(
    tmp_path: Path,
) -> None:
    with Registry(tmp_path / "r.db") as registry:
        assert registry.schema_version == len(MIGRATIONS)
        with registry.transaction():
            registry.insert(DeviceRecord(device_id="bin-0001", kind="bin"), hash_secret("s3cret"))
        stored = registry.secret_hash("bin-0001")
    assert stored is not None
    assert "s3cret" not in stored
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3cret!", stored)
    assert b"s3cret" not in (tmp_path / "r.db").read_bytes()


def test_a_registry_from_a_newer_smartplace_is_refused(tmp_path: Path) -> None:
    with Registry(tmp_path / "r.db") as registry:
        registry._db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SmartplaceError, match="newer than this smartplace"):
        Registry(tmp_path / "r.db")
