"""A device's credentials reach its own account and session only (issue 15, item 1).

Against a real stack: ``smartplace up``, devices provisioned with the CLI, ingest as a
process. Every account is bound to one client id in dynamic security, so a CONNECT with
any other is refused with reason 0x87 (Not authorized) before the broker looks for a
session to resume (mosquitto 2.0.11 src/handle_connect.c: mosquitto_unpwd_check, then
connect__on_authorised).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from smartplace.accounts import simulator_client_id
from smartplace.config import InfluxSettings, MqttSettings
from smartplace.devices.dynsec import Dynsec
from smartplace.influx import InfluxClient
from smartplace.publisher import Publisher
from smartplace.schemas import reading_topic

from .conftest import IngestRun, Stack, connect_as

pytestmark = [pytest.mark.security, pytest.mark.integration]

NOT_AUTHORIZED = 135
VICTIMS = ("victim-0001", "victim-0002", "victim-0003", "victim-0004")
ATTACKER = "lamp-0001"
PER_VICTIM = 5


def _provision(
    stack: Stack, tmp_path: Path, device_ids: list[str], kind: str = "air_quality"
) -> dict[str, str]:
    rows = tmp_path / "devices.csv"
    rows.write_text("device_id,kind\n" + "".join(f"{d},{kind}\n" for d in device_ids))
    secrets_path = tmp_path / "secrets.csv"
    done = stack.cli("devices", "import", str(rows), "--secrets-file", str(secrets_path))
    assert done.returncode == 0, done.stdout + done.stderr
    with secrets_path.open(newline="") as handle:
        return {row["device_id"]: row["secret"] for row in csv.DictReader(handle)}


def _mqtt(stack: Stack) -> MqttSettings:
    simulator = stack.credentials["simulator"]
    return MqttSettings(
        port=stack.mqtt_port,
        simulator_username=simulator[0],
        simulator_password=SecretStr(simulator[1]),
    )


def _reader(stack: Stack) -> InfluxClient:
    reader = stack.credentials["influx-reader"]
    return InfluxClient(
        InfluxSettings(url=stack.influx_url, username=reader[0], password=SecretStr(reader[1]))
    )


def _stored(stack: Stack, device_ids: tuple[str, ...]) -> int:
    with _reader(stack) as influx:
        rows = influx.query_rows(
            'SELECT count("pm25_ugm3") FROM "raw"."air_quality" GROUP BY "device_id"'
        )
    return sum(int(row["count"]) for row in rows if row["device_id"] in device_ids)


def _publish_readings(publisher: Publisher, device_ids: tuple[str, ...], first_ts_s: int) -> int:
    """PER_VICTIM readings of each device, a minute apart, as the devices' uplinks would be."""
    sent = 0
    for i in range(PER_VICTIM):
        for device_id in device_ids:
            payload = (
                f'{{"ts": {first_ts_s + i * 60}, "pm25_ugm3": {5 + i}, '
                f'"pm10_ugm3": {9 + i}, "no2_ugm3": {20 + i}}}'
            ).encode()
            publisher.publish(reading_topic("smartplace", "air_quality", device_id), payload)
            sent += 1
    assert publisher.flush(30)
    return sent


def _publish_victims(stack: Stack, first_ts_s: int) -> int:
    """Each victim's readings, published by the simulator."""
    mqtt = _mqtt(stack)
    with Publisher(mqtt, simulator_client_id(mqtt), mqtt.simulator_account()) as publisher:
        return _publish_readings(publisher, VICTIMS, first_ts_s)


def _wait_stored(
    stack: Stack, expected: int, device_ids: tuple[str, ...] = VICTIMS, timeout_s: float = 60
) -> int:
    deadline = time.monotonic() + timeout_s
    stored = _stored(stack, device_ids)
    while stored < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        stored = _stored(stack, device_ids)
    return stored


def test_a_device_cannot_take_ingest_s_session_and_no_reading_is_lost(
    stack: Stack, tmp_path: Path
) -> None:
    device_secrets = _provision(stack, tmp_path, [*VICTIMS, ATTACKER])
    ingest = IngestRun(stack)
    ingest.start()  # makes ingest's persistent session, then leaves it to queue
    assert ingest.stop() == 0
    sent = _publish_victims(stack, int(time.time()) - 600)

    attacks = [
        ("smartplace-ingest", False),  # resume ingest's session and its backlog
        ("smartplace-ingest", True),  # discard ingest's session
        ("smartplace-ingest-w0", False),  # a worker's session
        ("smartplace-ingest-w1", True),
    ]
    for client_id, clean_start in attacks:
        answer = connect_as(
            stack.mqtt_port,
            ATTACKER,
            device_secrets[ATTACKER],
            client_id,
            clean_start=clean_start,
        )
        assert (answer.reason.value, answer.session_present) == (NOT_AUTHORIZED, False), (
            client_id,
            clean_start,
        )

    ingest.start()
    try:
        assert _wait_stored(stack, sent) == sent == len(VICTIMS) * PER_VICTIM
    finally:
        assert ingest.stop() == 0


def test_a_device_cannot_log_in_with_another_device_s_client_id(
    stack: Stack, tmp_path: Path
) -> None:
    device_secrets = _provision(stack, tmp_path, ["lamp-0002", "lamp-0003"])
    own = connect_as(
        stack.mqtt_port, "lamp-0002", device_secrets["lamp-0002"], "lamp-0002", clean_start=True
    )
    assert own.reason.value == 0
    for client_id in ("lamp-0003", "lamp-0002-x", "smartplace-simulator", "smartplace-admin"):
        other = connect_as(
            stack.mqtt_port,
            "lamp-0002",
            device_secrets["lamp-0002"],
            client_id,
            clean_start=True,
        )
        assert other.reason.value == NOT_AUTHORIZED, client_id


def test_service_accounts_accept_only_their_own_client_id(stack: Stack) -> None:
    for role, client_id in (("simulator", "smartplace-simulator"), ("admin", "smartplace-admin")):
        username, password = stack.credentials[role]
        assert (
            connect_as(
                stack.mqtt_port, username, password, client_id, clean_start=True
            ).reason.value
            == 0
        )
        assert (
            connect_as(
                stack.mqtt_port, username, password, f"{client_id}-2", clean_start=True
            ).reason.value
            == NOT_AUTHORIZED
        )


RESERVED = ("smartplace-simulator", "smartplace-admin", "smartplace-ingest", "smartplace-ingest-w3")


@pytest.mark.parametrize("name", RESERVED)
def test_a_device_id_naming_a_service_account_is_refused_and_its_password_kept(
    stack: Stack, tmp_path: Path, name: str
) -> None:
    added = stack.cli("devices", "add", name, "--kind", "air_quality")
    rows = tmp_path / "devices.csv"
    rows.write_text(f"device_id,kind\nlamp-0100,air_quality\n{name},air_quality\n")
    planned = stack.cli("devices", "import", str(rows), "--plan")
    imported = stack.cli("devices", "import", str(rows))
    for attempt in (added, planned, imported):
        assert attempt.returncode == 1, attempt.stdout
        assert f"error: device id '{name}' is reserved" in attempt.stderr
        assert "Traceback" not in attempt.stderr
    assert "+ add" not in planned.stdout
    listed = stack.cli("devices", "list", "--json")
    assert name not in listed.stdout
    assert "lamp-0100" not in listed.stdout  # nothing of the import was applied
    role = {"smartplace-simulator": "simulator", "smartplace-admin": "admin"}.get(name, "ingest")
    username, password = stack.credentials[role]
    # Ingest's own session is not touched: a worker's account (same password) proves it.
    login = name if role != "ingest" else "smartplace-ingest-w3"
    client_id = login
    assert (
        connect_as(
            stack.mqtt_port,
            login if role == "ingest" else username,
            password,
            client_id,
            clean_start=True,
        ).reason.value
        == 0
    )
    # 0 readings lost: ingest still logs in and the simulator still publishes, and so does a
    # device provisioned after the attempt, each counted in InfluxDB.
    owner = f"after-{RESERVED.index(name):04d}"
    owner_secret = _provision(stack, tmp_path, [owner])[owner]
    ingest = IngestRun(stack)
    ingest.start()
    try:
        mqtt = _mqtt(stack)
        first_ts_s = int(time.time()) - 600
        with Publisher(mqtt, simulator_client_id(mqtt), mqtt.simulator_account()) as simulator:
            sent = _publish_readings(simulator, (owner,), first_ts_s)
        with Publisher(mqtt, owner, (owner, owner_secret)) as device:
            sent += _publish_readings(device, (owner,), first_ts_s + 30)
        assert _wait_stored(stack, sent, (owner,)) == sent == 2 * PER_VICTIM
    finally:
        assert ingest.stop() == 0


def test_adding_a_device_whose_account_the_broker_already_has_changes_nothing(
    stack: Stack,
) -> None:
    admin = stack.credentials["admin"]
    mqtt = MqttSettings(port=stack.mqtt_port, admin_username=admin[0])
    with Dynsec(mqtt, admin) as dynsec:
        dynsec.run(
            [
                {
                    "command": "createClient",
                    "username": "stray-0001",
                    "password": "the-stray-password",
                    "clientid": "stray-0001",
                }
            ]
        )
    added = stack.cli("devices", "add", "stray-0001", "--kind", "air_quality")
    assert added.returncode == 1
    assert "error: the broker already has an account named 'stray-0001'" in added.stderr
    assert "stray-0001" not in stack.cli("devices", "list", "--json").stdout
    assert (
        connect_as(
            stack.mqtt_port, "stray-0001", "the-stray-password", "stray-0001", clean_start=True
        ).reason.value
        == 0
    )
