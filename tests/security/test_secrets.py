"""Secrets stay in files only their owner can read (issue 15, item 6).

No secret on any command line or in the environment of what ``smartplace up`` starts;
the stack's files 0600 in 0700 directories; a spool directory others could write to is
refused; the demo InfluxDB wants credentials, and its reader cannot write.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from smartplace.config import InfluxSettings
from smartplace.errors import InfluxAuthError
from smartplace.influx import InfluxClient
from smartplace.ingest.receive.spool import Spool, SpoolError

from .conftest import Stack

pytestmark = [pytest.mark.security, pytest.mark.integration]

TLS_FILES = ("ca.crt", "ca.key", "server.crt", "server.key")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_no_secret_is_on_a_command_line_or_in_an_environment_while_up_runs(stack: Stack) -> None:
    watched = stack.watched
    assert watched.sightings == []
    (call,) = watched.ctrl_calls  # mosquitto_ctrl ran once, to create the plugin's file
    assert call["argv"][1:] == [
        "dynsec",
        "init",
        str(stack.stack_dir / "mosquitto" / "dynamic-security.json"),
        "smartplace-admin",
    ]
    environment = "\n".join(f"{k}={v}" for k, v in dict(call["environ"]).items())  # type: ignore[call-overload]
    for role, (_user, password) in stack.credentials.items():
        assert password not in environment, role
    assert len(watched.pids_seen) >= 3  # 'up', and the two servers it left running


def test_the_stack_s_files_are_its_owner_s_only(stack: Stack, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.csv"
    added = stack.cli(
        "devices", "add", "mode-0001", "--kind", "bin", "--secret-file", str(secret_file)
    )
    assert added.returncode == 0, added.stderr
    modes = {
        path.relative_to(stack.stack_dir).as_posix(): _mode(path)
        for path in (
            stack.stack_dir,
            stack.stack_dir / "credentials.json",
            stack.stack_dir / "stack.toml",
            stack.stack_dir / "state.json",
            stack.stack_dir / "registry.db",
            stack.stack_dir / "mosquitto",
            stack.stack_dir / "mosquitto" / "dynamic-security.json",
            stack.stack_dir / "influxdb",
            stack.stack_dir / "tls",
            *(stack.stack_dir / "tls" / name for name in TLS_FILES),
            stack.stack_dir / "tls.env",
        )
    }
    assert modes == {
        ".": 0o700,
        "credentials.json": 0o600,
        "stack.toml": 0o600,
        "state.json": 0o600,
        "registry.db": 0o600,
        "mosquitto": 0o700,
        "mosquitto/dynamic-security.json": 0o600,
        "influxdb": 0o700,
        "tls": 0o700,
        "tls/ca.crt": 0o600,
        "tls/ca.key": 0o600,
        "tls/server.crt": 0o600,
        "tls/server.key": 0o600,
        "tls.env": 0o600,
    }
    # Only the four files: openssl's work (request, config) is made and removed elsewhere.
    assert sorted(path.name for path in (stack.stack_dir / "tls").iterdir()) == sorted(TLS_FILES)
    assert _mode(secret_file) == 0o600


def test_a_registry_made_under_a_loose_umask_is_still_0600(tmp_path: Path) -> None:
    from smartplace.devices.registry import Registry

    old = os.umask(0o000)
    try:
        with Registry(tmp_path / "reg" / "registry.db"):
            pass
    finally:
        os.umask(old)
    assert (_mode(tmp_path / "reg"), _mode(tmp_path / "reg" / "registry.db")) == (0o700, 0o600)


def test_a_new_spool_directory_is_0700(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        Spool(tmp_path / "spool", 1 << 20)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "spool") == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_spool_directory_others_may_write_to_is_refused(tmp_path: Path, mode: int) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    spool_dir.chmod(mode)
    (spool_dir / "00000000000000000000.seg").write_bytes(b"")  # what another user left
    with pytest.raises(SpoolError, match=f"is writable by others \\(mode {mode:04o}\\)"):
        Spool(spool_dir, 1 << 20)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_spool_directory_another_user_owns_is_refused(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir(mode=0o700)
    os.chown(spool_dir, 65534, 65534)
    with pytest.raises(SpoolError, match="belongs to uid 65534, not to this user"):
        Spool(spool_dir, 1 << 20)


@pytest.mark.skipif(os.geteuid() != 0, reason="writing as another user needs root")
@pytest.mark.parametrize("name", ["00000000000000000000.seg", "checkpoint.state"])
def test_a_file_another_user_left_in_a_spool_directory_since_made_0700_is_refused(
    tmp_path: Path, name: str
) -> None:
    # Writable by all once; another user leaves a file; the operator runs the 'chmod 700'
    # the refusal suggests. What that user wrote must still not be replayed as ours.
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    spool_dir.chmod(0o777)
    planted = spool_dir / name
    planted.write_bytes(b"")
    os.chown(planted, 65534, 65534)
    spool_dir.chmod(0o700)
    with pytest.raises(SpoolError) as refused:
        Spool(spool_dir, 1 << 20)
    assert str(refused.value) == (
        f"the spool directory {spool_dir} holds {name}, which belongs to uid 65534, not to "
        f"this user (0): another user may have written it; remove it, or choose another "
        f"SMARTPLACE_INGEST__SPOOL_DIR"
    )


def test_ingest_refuses_such_a_spool_in_one_line(stack: Stack, tmp_path: Path) -> None:
    spool_dir = tmp_path / "shared-spool"
    spool_dir.mkdir()
    spool_dir.chmod(0o777)
    ran = subprocess.run(
        [sys.executable, "-m", "smartplace", "ingest"],
        env={**stack.env, "SMARTPLACE_INGEST__SPOOL_DIR": str(spool_dir), "COLUMNS": "1000"},
        cwd=stack.dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 1
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: the spool directory {spool_dir} is writable by others (mode 0777): "
        f"'chmod 700 {spool_dir}' or choose another"
    ]
    assert "Traceback" not in ran.stderr


def _client(stack: Stack, role: str | None) -> InfluxClient:
    if role is None:
        return InfluxClient(InfluxSettings(url=stack.influx_url))
    username, password = stack.credentials[role]
    return InfluxClient(
        InfluxSettings(url=stack.influx_url, username=username, password=SecretStr(password))
    )


def test_the_demo_influxdb_refuses_anyone_without_credentials(stack: Stack) -> None:
    with _client(stack, None) as anonymous:
        with pytest.raises(InfluxAuthError) as query:
            anonymous.query('SELECT * FROM "raw"."air_quality" LIMIT 1')
        with pytest.raises(InfluxAuthError) as write:
            anonymous.write(["air_quality,device_id=x pm25_ugm3=1 1"], "raw")
    assert (query.value.status_code, write.value.status_code) == (401, 401)


def test_the_reader_reads_and_cannot_write_and_ingest_is_no_admin(
    stack: Stack,
) -> None:
    line = f"air_quality,device_id=auth-0001 pm25_ugm3=3 {time.time_ns()}"
    with _client(stack, "influx-writer") as writer:
        assert writer.write([line], "raw") == 1
        # Ingest reads its raw points back (the rebuild of lost windows), and nothing more.
        assert writer.query_rows('SELECT count("pm25_ugm3") FROM "raw"."air_quality"')
        with pytest.raises(InfluxAuthError) as writer_query:
            writer.query("CREATE USER \"mallory\" WITH PASSWORD 'x'", database=False)
    with _client(stack, "influx-reader") as reader:
        rows = reader.query_rows(
            'SELECT "pm25_ugm3" FROM "raw"."air_quality" WHERE "device_id" = \'auth-0001\''
        )
        assert [row["pm25_ugm3"] for row in rows] == [3]
        with pytest.raises(InfluxAuthError) as reader_write:
            reader.write([line.replace("=3 ", "=4 ")], "raw")
        with pytest.raises(InfluxAuthError):
            reader.query('DROP DATABASE "smartplace"', database=False)
    assert (writer_query.value.status_code, reader_write.value.status_code) == (403, 403)
