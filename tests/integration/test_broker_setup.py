"""`smartplace broker init-dynsec` and `broker accounts`: what docker-compose's one-shot
services run, here against a real mosquitto that loads the file they write."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from smartplace.broker import connect_and_wait, make_client
from smartplace.config import MqttSettings
from smartplace.stack import MosquittoServer, find_mosquitto, free_port
from smartplace.stack.mosquitto import find_dynsec_plugin

from .helpers import run_smartplace

pytestmark = pytest.mark.integration


def test_init_dynsec_then_accounts_give_a_broker_ingest_can_log_in_to(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "SMARTPLACE_MQTT__PORT": str(port),
        "SMARTPLACE_MQTT__ADMIN_USERNAME": "admin",
        "SMARTPLACE_MQTT__ADMIN_PASSWORD": "admin-secret-1",
        "SMARTPLACE_MQTT__USERNAME": "ingest",
        "SMARTPLACE_MQTT__PASSWORD": "ingest-secret-1",
        "SMARTPLACE_MQTT__SIMULATOR_USERNAME": "simulator",
        "SMARTPLACE_MQTT__SIMULATOR_PASSWORD": "simulator-secret-1",
    }
    dynsec_file = tmp_path / "dynamic-security.json"
    created = run_smartplace(env, "broker", "init-dynsec", str(dynsec_file))
    assert created.returncode == 0, created.stderr
    again = run_smartplace(env, "broker", "init-dynsec", str(dynsec_file))
    assert "left as it is" in again.stdout
    server = MosquittoServer(
        find_mosquitto(), tmp_path, port, ("admin", "admin-secret-1"), find_dynsec_plugin()
    )
    server.start()
    try:
        accounts = run_smartplace(env, "broker", "accounts")
        assert accounts.returncode == 0, accounts.stderr
        settings = MqttSettings(port=port, username="ingest", password="ingest-secret-1")
        client = make_client(settings, settings.client_id, settings.ingest_account())
        connected = threading.Event()
        client.on_connect = lambda *args: connected.set() if not args[3].is_failure else None
        connect_and_wait(client, settings, connected, lambda: None, 10)
        client.disconnect()
        client.loop_stop()
    finally:
        server.stop()
