"""The chaos suite's own mosquitto and influxd: its cases stop and restart them, so they are
not the session's shared servers. Started once for the module, on free ports in temp dirs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from smartplace.stack import InfluxdServer, MosquittoServer, find_influxd, find_mosquitto, free_port
from smartplace.stack.mosquitto import find_dynsec_plugin
from tests.conftest import _binary


@dataclass
class ChaosStack:
    mosquitto: MosquittoServer
    influxd: InfluxdServer


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    admin = ("chaos-admin", secrets.token_urlsafe(12))
    mosquitto = MosquittoServer(
        _binary(find_mosquitto, "SMARTPLACE_MOSQUITTO_BIN"),
        tmp_path_factory.mktemp("chaos-mosquitto"),
        free_port(),
        admin,
        _binary(find_dynsec_plugin, "SMARTPLACE_MOSQUITTO_DYNSEC_PLUGIN"),
    )
    influxd = InfluxdServer(
        _binary(find_influxd, "SMARTPLACE_INFLUXD_BIN"),
        tmp_path_factory.mktemp("chaos-influxd"),
        free_port(),
        free_port(),
    )
    mosquitto.start()
    influxd.start()
    yield ChaosStack(mosquitto, influxd)
    mosquitto.stop()
    influxd.stop()
