"""Device provisioning against the real broker with dynamic security, and ingest following it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from smartplace.config import Settings
from smartplace.influx import InfluxClient

from .helpers import points

pytestmark = pytest.mark.integration


def cli(settings: Settings, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """The smartplace command, as an engineer runs it, pointed at this test's broker and registry."""
    mqtt = settings.mqtt
    env = {
        **os.environ,
        "SMARTPLACE_MQTT__PORT": str(mqtt.port),
        "SMARTPLACE_MQTT__TOPIC_PREFIX": mqtt.topic_prefix,
        "SMARTPLACE_MQTT__CLIENT_ID": f"cli-{mqtt.client_id}",
        "SMARTPLACE_MQTT__ADMIN_USERNAME": str(mqtt.admin_username),
        "SMARTPLACE_MQTT__ADMIN_PASSWORD": mqtt.admin_password.get_secret_value()
        if mqtt.admin_password
        else "",
        "SMARTPLACE_REGISTRY_FILE": str(settings.registry_file),
        "COLUMNS": "160",
    }
    return subprocess.run(
        [sys.executable, "-m", "smartplace", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class Device:
    """A paho client logging in as a device, recording what the broker says."""

    def __init__(
        self,
        settings: Settings,
        username: str | None,
        password: str | None,
        client_id: str | None = None,
    ) -> None:
        # A device's account is bound to its id as client id: by default it logs in with that.
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or username or f"anonymous-{uuid.uuid4().hex[:6]}",
            protocol=paho.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda *a: self._set("connack", a[3])
        self.client.on_disconnect = lambda *a: self._set("disconnect", a[3])
        self.client.on_subscribe = lambda *a: self._set("suback", a[3])
        self.client.on_publish = lambda *a: self._set("puback", a[3])
        self.events: dict[str, Any] = {}
        self._changed = threading.Event()
        self.settings = settings

    def _set(self, name: str, value: Any) -> None:
        self.events[name] = value
        self._changed.set()

    def wait(self, name: str, timeout_s: float = 10) -> Any:
        deadline = time.monotonic() + timeout_s
        while name not in self.events:
            assert time.monotonic() < deadline, f"no {name} within {timeout_s} s"
            self._changed.wait(0.05)
            self._changed.clear()
        return self.events.pop(name)

    def connect(self) -> ReasonCode:
        self.client.connect("127.0.0.1", self.settings.mqtt.port)
        self.client.loop_start()
        return self.wait("connack")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def add_device(settings: Settings, tmp_path: Path, device_id: str, *extra: str) -> str:
    secret_file = tmp_path / f"{device_id}.csv"
    result = cli(settings, "devices", "add", device_id, "--secret-file", str(secret_file), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    with secret_file.open() as handle:
        [row] = list(csv.DictReader(handle))
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    return row["secret"]


def reading(pm25: float) -> bytes:
    return orjson.dumps(
        {"ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "pm25_ugm3": pm25}
    )


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_anonymous_and_wrong_passwords_are_refused(settings: Settings, tmp_path: Path) -> None:
    device_id = unique("aq")
    secret = add_device(settings, tmp_path, device_id, "--kind", "air_quality")
    anonymous = Device(settings, None, None)
    assert anonymous.connect().is_failure
    wrong = Device(settings, device_id, secret + "x")
    assert wrong.connect().is_failure
    right = Device(settings, device_id, secret)
    assert not right.connect().is_failure
    for client in (anonymous, wrong, right):
        client.close()


def test_a_device_publishes_only_as_itself_and_subscribes_to_nothing(
    registered_settings: Settings, influx: InfluxClient, running_ingest: Any, tmp_path: Path
) -> None:
    settings = registered_settings
    a, b = unique("aq"), unique("aq")
    secret_a = add_device(
        settings, tmp_path, a, "--kind", "air_quality", "--site", "princes-street"
    )
    add_device(settings, tmp_path, b, "--kind", "air_quality")
    prefix = settings.mqtt.topic_prefix
    device = Device(settings, a, secret_a)
    assert not device.connect().is_failure

    device.client.publish(f"{prefix}/air_quality/{b}/reading", reading(66.0), qos=1)
    assert device.wait("puback").is_failure  # MQTT 5: the broker says 'not authorised'
    device.client.publish(f"{prefix}/registry/{b}", b'{"device_id": "forged"}', qos=1)
    assert device.wait("puback").is_failure
    device.client.publish(f"{prefix}/air_quality/{a}/reading", reading(11.0), qos=1)
    assert not device.wait("puback").is_failure

    device.client.subscribe(f"{prefix}/air_quality/{b}/#", qos=1)
    assert all(code.is_failure for code in device.wait("suback"))
    device.client.subscribe("#", qos=1)
    assert all(code.is_failure for code in device.wait("suback"))
    device.close()

    running_ingest.wait_for_received(1 + 2)  # A's reading and the two registry records
    landed = points(influx, "raw", "air_quality")
    assert [(p["device_id"], p["site"], p["pm25_ugm3"]) for p in landed] == [
        (a, "princes-street", 11.0)
    ]
    assert running_ingest.service.stats.rejected == 0  # B's forged reading never reached ingest


def test_a_device_added_while_ingest_runs_is_accepted_with_its_site_and_retiring_it_shuts_it_out(
    registered_settings: Settings, influx: InfluxClient, running_ingest: Any, tmp_path: Path
) -> None:
    settings = registered_settings
    device_id = unique("aq")
    secret = add_device(
        settings,
        tmp_path,
        device_id,
        "--kind",
        "air_quality",
        "--site",
        "market-place",
        "--latitude",
        "53.412",
        "--longitude",
        "-2.1535",
    )
    device = Device(settings, device_id, secret)
    assert not device.connect().is_failure
    device.client.publish(
        f"{settings.mqtt.topic_prefix}/air_quality/{device_id}/reading", reading(9.5), qos=1
    )
    assert not device.wait("puback").is_failure
    running_ingest.wait_for_received(2)
    [point] = points(influx, "raw", "air_quality")
    assert (point["device_id"], point["site"]) == (device_id, "market-place")

    result = cli(settings, "devices", "retire", device_id)
    assert result.returncode == 0, result.stderr
    assert device.wait("disconnect") is not None  # dropped while connected
    device.client.loop_stop()
    again = Device(settings, device_id, secret)
    assert again.connect().is_failure  # and refused from then on
    again.close()


def test_rotating_a_secret_locks_the_old_one_out(settings: Settings, tmp_path: Path) -> None:
    device_id = unique("bin")
    old = add_device(settings, tmp_path, device_id, "--kind", "bin")
    result = cli(
        settings, "devices", "rotate-secret", device_id, "--secret-file", str(tmp_path / "new.csv")
    )
    assert result.returncode == 0, result.stderr
    with (tmp_path / "new.csv").open() as handle:
        new = next(csv.DictReader(handle))["secret"]
    assert Device(settings, device_id, old).connect().is_failure
    fresh = Device(settings, device_id, new)
    assert not fresh.connect().is_failure
    fresh.close()


def test_importing_a_thousand_devices_then_publishing_as_each_of_them(
    registered_settings: Settings, influx: InfluxClient, running_ingest: Any, tmp_path: Path
) -> None:
    settings = registered_settings
    tag = uuid.uuid4().hex[:6]
    source = tmp_path / "fleet.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["device_id", "kind", "site", "latitude", "longitude", "owner"])
        for i in range(1000):
            writer.writerow(
                [
                    f"aq-{tag}-{i:04d}",
                    "air_quality",
                    f"site-{i % 10}",
                    f"{53.40 + i / 100000:.5f}",
                    "-2.158",
                    "council",
                ]
            )
    secrets_file = tmp_path / "secrets.csv"

    imported = cli(settings, "devices", "import", str(source), "--secrets-file", str(secrets_file))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "Plan: 1000 to add, 0 to change, 0 to retire, 0 unchanged." in imported.stdout
    assert "2000/2000" in imported.stdout  # the progress bar, at its end
    again = cli(settings, "devices", "import", str(source), "--plan")
    assert "Plan: 0 to add, 0 to change, 0 to retire, 1000 unchanged." in again.stdout

    published = cli(settings, "simulate", "--as-devices", str(secrets_file))
    assert published.returncode == 0, published.stdout + published.stderr
    running_ingest.wait_for_received(1000 + 1000, timeout_s=120)  # registry records + readings
    stats = running_ingest.service.stats
    assert (stats.accepted, stats.rejected) == (1000, 0)
    sites = {p["site"] for p in points(influx, "raw", "air_quality")}
    assert sites == {f"site-{i}" for i in range(10)}


def test_an_import_with_one_bad_row_changes_nothing_and_names_the_row(
    settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "fleet.csv"
    source.write_text(
        "device_id,kind,site\n"
        "bin-good-0001,bin,mersey-square\n"
        "bin-good-0002,bin,mersey-square\n"
        "bin bad 3,bin,mersey-square\n"
        "bin-good-0004,bin,mersey-square\n"
    )
    result = cli(settings, "devices", "import", str(source))
    assert result.returncode == 1
    assert "line 4: device id 'bin bad 3' is not allowed" in result.stdout
    assert "error: 1 bad row(s)" in result.stderr
    assert "nothing was changed" in result.stderr
    listed = cli(settings, "devices", "list", "--json")
    assert orjson.loads(listed.stdout) == []


def test_a_device_publishes_only_on_its_three_leaves_and_a_new_kind_moves_them(
    registered_settings: Settings, tmp_path: Path
) -> None:
    """A device may retain one message per topic it may publish on: its three leaves, no more."""
    settings = registered_settings
    device_id = unique("aq")
    secret = add_device(settings, tmp_path, device_id, "--kind", "air_quality")
    prefix = settings.mqtt.topic_prefix
    device = Device(settings, device_id, secret)
    assert not device.connect().is_failure
    for leaf, refused in (
        ("reading", False),
        ("status", False),
        ("senml", False),
        ("junk/0", True),
    ):
        device.client.publish(f"{prefix}/air_quality/{device_id}/{leaf}", b"{}", qos=1)
        assert device.wait("puback").is_failure is refused, leaf
    device.close()

    changed = cli(settings, "devices", "update", device_id, "--kind", "bin")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    device = Device(settings, device_id, secret)
    assert not device.connect().is_failure
    for kind, refused in (("bin", False), ("air_quality", True)):
        device.client.publish(f"{prefix}/{kind}/{device_id}/reading", b"{}", qos=1)
        assert device.wait("puback").is_failure is refused, kind
    device.close()
