"""Bridge files for the project's broker: what they say, and what they refuse to write."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartplace.errors import SmartplaceError
from smartplace.lorawan.bridge import (
    BridgeConfigError,
    ChirpstackBridge,
    TtsBridge,
    render_chirpstack_bridge,
    render_tts_bridge,
    write_bridge_file,
)
from smartplace.lorawan.cli import app as lorawan_app
from smartplace.stack.local import BRIDGES_DIR_NAME


def settings_of(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split(" ", 1) for line in lines)


def test_tts_bridge_speaks_311_over_tls_with_the_system_cas_as_app_at_tenant(
    tmp_path: Path,
) -> None:
    key = tmp_path / "key"
    key.write_text("NNSXS.ABC.DEF\n")
    conf = settings_of(
        render_tts_bridge(TtsBridge("eu1.cloud.thethings.network:8883", "bins@ttn", key))
    )
    assert conf == {
        "connection": "tts-bins",
        "address": "eu1.cloud.thethings.network:8883",
        "bridge_protocol_version": "mqttv311",
        "try_private": "false",
        "bridge_capath": "/etc/ssl/certs",
        "bridge_insecure": "false",
        "remote_username": "bins@ttn",
        "remote_password": "NNSXS.ABC.DEF",
        "remote_clientid": "smartplace-bridge-bins",
        "cleansession": "true",
        "notifications": "false",
        "start_type": "automatic",
        "restart_timeout": "5 60",
        "keepalive_interval": "60",
        "topic": "v3/bins@ttn/devices/+/up in 0",
    }


def test_chirpstack_bridge_takes_one_applications_uplinks_at_qos_1(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret")
    app = "6c3a4e54-0b6e-4a3b-9f65-1f1c0f7b9a11"
    conf = settings_of(
        render_chirpstack_bridge(ChirpstackBridge("cs.example:8883", app, "smartplace", password))
    )
    assert conf["topic"] == f"application/{app}/device/+/event/up in 1"
    assert (conf["cleansession"], conf["remote_password"], conf["bridge_capath"]) == (
        "false",
        "s3cret",
        "/etc/ssl/certs",
    )


@pytest.mark.parametrize(
    ("application", "key", "message"),
    [
        ("bins", "k", "give it as application-id@tenant-id"),
        ("bins@ttn\ntopic # both 2", "k", "give it as application-id@tenant-id"),
        ("bins@ttn", "two words", "expected one key, on one line"),
        ("bins@ttn", "key\ntopic # both 2", "expected one key, on one line"),
        ("bins@ttn", "", "expected one key, on one line"),
    ],
)
def test_nothing_can_add_lines_to_the_brokers_configuration(
    tmp_path: Path, application: str, key: str, message: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(key)
    with pytest.raises(BridgeConfigError, match=message):
        render_tts_bridge(TtsBridge("eu1.cloud.thethings.network:8883", application, key_file))


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BridgeConfigError, match=r"API key file .*missing: No such file"):
        render_tts_bridge(TtsBridge("h:1", "bins@ttn", tmp_path / "missing"))


def test_the_file_is_the_owners_alone_even_when_it_existed(tmp_path: Path) -> None:
    path = tmp_path / "conf.d" / "bridge.conf"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_bridge_file("connection x\n", path)
    assert (path.read_text(), path.stat().st_mode & 0o777) == ("connection x\n", 0o600)


def test_by_default_the_bridge_goes_where_smartplace_up_includes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_dir = tmp_path / ".smartplace"
    monkeypatch.setenv("SMARTPLACE_STACK_DIR", str(stack_dir))
    key = tmp_path / "key"
    key.write_text("NNSXS.ABC.DEF\n")
    args = ["bridge", "--address", "eu1.cloud.thethings.network:8883", "--api-key-file", str(key)]
    result = CliRunner().invoke(lorawan_app, [*args, "--application", "bins@ttn"])
    assert result.exit_code == 0, result.output
    written = stack_dir / BRIDGES_DIR_NAME / "tts-bins.conf"
    assert written.read_text() == render_tts_bridge(
        TtsBridge("eu1.cloud.thethings.network:8883", "bins@ttn", key)
    )
    assert (written.stat().st_mode & 0o777, written.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    # another application, another file: the first is kept
    again = CliRunner().invoke(lorawan_app, [*args, "--application", "people@ttn"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in written.parent.iterdir()) == ["tts-bins.conf", "tts-people.conf"]


def test_an_application_name_that_walks_out_of_the_directory_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack_dir = tmp_path / "a" / ".smartplace"
    monkeypatch.setenv("SMARTPLACE_STACK_DIR", str(stack_dir))
    key = tmp_path / "key"
    key.write_text("NNSXS.ABC.DEF\n")
    args = ["bridge", "--address", "h:8883", "--api-key-file", str(key)]
    result = CliRunner().invoke(lorawan_app, [*args, "--application", "../../../evil@ttn"])
    assert isinstance(result.exception, BridgeConfigError)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "a",
        "a/.smartplace",
        "a/.smartplace/bridges",
        "key",
    ]


@pytest.mark.parametrize("ca", ["/tmp/ca.pem\ninclude_dir /etc/evil", "/tmp/ca.pem\r\nx 1"])
def test_a_ca_file_path_cannot_add_lines_either(tmp_path: Path, ca: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("NNSXS.KEY")
    with pytest.raises(BridgeConfigError, match=r"CA file .*: one line of printable characters"):
        render_tts_bridge(TtsBridge("h:8883", "bins@ttn", key_file, Path(ca)))
    with pytest.raises(BridgeConfigError, match=r"CA file .*: one line of printable characters"):
        render_chirpstack_bridge(
            ChirpstackBridge(
                "h:8883", "00000000-0000-0000-0000-000000000000", "u", key_file, Path(ca)
            )
        )


def test_an_output_that_cannot_be_written_is_named_not_a_traceback(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("NNSXS.ABC.DEF\n")
    output = key / "bridge.conf"  # under a file: no directory can be made there
    args = ["bridge", "--address", "h:8883", "--api-key-file", str(key)]
    result = CliRunner().invoke(
        lorawan_app, [*args, "--application", "bins@ttn", "--output", str(output)]
    )
    assert isinstance(result.exception, BridgeConfigError)
    assert str(result.exception) == f"cannot write {output}: File exists"


def test_a_key_file_that_is_not_utf8_is_named_for_each_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTPLACE_MQTT__PORT", "1")  # nothing listens: each refuses first
    key = tmp_path / "key"
    key.write_bytes("NNSXS.ABC".encode("utf-16"))  # an editor's UTF-16, byte order mark first
    said = "not UTF-8 text (save it as UTF-8, one line)"
    runs = {
        f"API key file {key}: {said}": [
            "bridge",
            "--address",
            "h:8883",
            "--api-key-file",
            str(key),
            "--application",
            "bins@ttn",
            "--output",
            str(tmp_path / "b.conf"),
        ],
        f"password file {key}: {said}": [
            "bridge",
            "--server",
            "chirpstack",
            "--username",
            "u",
            "--address",
            "h:8883",
            "--api-key-file",
            str(key),
            "--application",
            "00000000-0000-0000-0000-000000000000",
            "--output",
            str(tmp_path / "c.conf"),
        ],
        f"secret file {key}: {said}": ["webhook", "--secret-file", str(key)],
        f"API key file {key}: {said} ": [  # (a space apart from the bridge's key; stripped below)
            "backfill",
            "--since",
            "2026-01-01T00:00:00",
            "--server",
            "http://127.0.0.1:1",
            "--application",
            "bins@ttn",
            "--api-key-file",
            str(key),
        ],
    }
    for message, args in runs.items():
        result = CliRunner().invoke(lorawan_app, args)
        assert isinstance(result.exception, SmartplaceError), (args[0], result.exception)
        assert str(result.exception) == message.strip()
