"""Shared fixtures: real mosquitto and influxd processes, one of each per test session.

Each starts on free 127.0.0.1 ports in a temp dir and is stopped at the end.
When a test that used them fails, the tail of their logs is attached to the
report. With CI set, a missing server binary fails the tests instead of
skipping them.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Hermetic settings: never read a developer's ./smartplace.toml or ./.smartplace/stack.toml.
os.environ["SMARTPLACE_STACK_DIR"] = tempfile.mkdtemp(prefix="smartplace-test-stack-")
os.environ["SMARTPLACE_REGISTRY_FILE"] = os.path.join(
    tempfile.mkdtemp(prefix="smartplace-test-registry-"), "registry.db"
)
os.environ.pop("SMARTPLACE_CONFIG", None)

from smartplace.config import InfluxSettings, IngestSettings, Settings
from smartplace.errors import ServerNotFoundError
from smartplace.influx import InfluxClient
from smartplace.ingest.service import IngestService
from smartplace.stack import (
    InfluxdServer,
    MosquittoServer,
    ServerProcess,
    find_influxd,
    find_mosquitto,
    free_port,
)
from smartplace.stack.mosquitto import find_dynsec_plugin, provisioned_mqtt
from smartplace.stack.tls import ensure_certificates

SERVER_FIXTURES = ("mosquitto", "influxd")
_started: dict[str, ServerProcess] = {}


def _binary(finder: Callable[[Path | None], Path], env_name: str) -> Path:
    configured = os.environ.get(env_name)
    try:
        return finder(Path(configured) if configured else None)
    except ServerNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI is set, so a missing server fails the run)", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A broker with dynamic security, as in production: nobody gets in without an account.

    With a TLS listener beside the plain one, made as 'smartplace up' makes its own.
    """
    binary = _binary(find_mosquitto, "SMARTPLACE_MOSQUITTO_BIN")
    plugin = _binary(find_dynsec_plugin, "SMARTPLACE_MOSQUITTO_DYNSEC_PLUGIN")
    admin = ("test-admin", secrets.token_urlsafe(12))
    certificates = ensure_certificates(tmp_path_factory.mktemp("mosquitto-tls"))
    server = MosquittoServer(
        binary,
        tmp_path_factory.mktemp("mosquitto"),
        free_port(),
        admin,
        plugin,
        tls=(free_port(), certificates),
    )
    server.start()
    _started["mosquitto"] = server
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdServer]:
    binary = _binary(find_influxd, "SMARTPLACE_INFLUXD_BIN")
    server = InfluxdServer(binary, tmp_path_factory.mktemp("influxd"), free_port(), free_port())
    server.start()
    _started["influxd"] = server
    yield server
    server.stop()


@pytest.fixture
def settings(mosquitto: MosquittoServer, influxd: InfluxdServer) -> Settings:
    """Settings for one test: its own topic prefix, accounts, MQTT session and database."""
    mqtt = provisioned_mqtt(mosquitto, "test")
    unique = mqtt.topic_prefix.removeprefix("test-")
    return Settings(
        mqtt=mqtt,
        influx=InfluxSettings(url=influxd.url, database=f"test_{unique}"),
        # Tests of other things publish as unregistered devices; registry tests turn this on.
        ingest=IngestSettings(batch_max_wait_s=0.05, require_registered_devices=False, http_port=0),
        registry_file=Path(tempfile.mkdtemp(prefix="smartplace-test-registry-")) / "registry.db",
    )


def another_broker(mosquitto: MosquittoServer, directory: Path, **options: Any) -> MosquittoServer:
    """A mosquitto of its own, with dynamic security as the session's, on a free port (with
    ``options`` such as ``tls`` or ``extra_config``); not started."""
    admin = ("admin", secrets.token_urlsafe(12))
    return MosquittoServer(
        mosquitto.binary,
        directory,
        free_port(),
        admin,
        mosquitto.plugin,
        **options,
    )


@pytest.fixture
def influx(settings: Settings) -> Iterator[InfluxClient]:
    with InfluxClient(settings.influx) as client:
        yield client


class RunningIngest:
    """An ingest service on a background thread, stopped (and drained) at the end of the test."""

    def __init__(self, settings: Settings) -> None:
        self.service = IngestService(settings)
        self.stop = threading.Event()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)

    def _run(self) -> None:
        try:
            self.service.run(self.stop, self._ready)
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(30), "ingest did not start within 30 s"
        if self.error:
            raise self.error

    def wait_for_received(self, count: int, timeout_s: float = 30.0) -> None:
        """Wait until ingest has received, processed and written ``count`` messages."""
        deadline = time.monotonic() + timeout_s
        stats = self.service.stats
        while time.monotonic() < deadline:
            if self.error:
                raise self.error
            if stats.received >= count and stats.batches_written == stats.batches:
                return
            time.sleep(0.05)
        raise AssertionError(
            f"ingest received {stats.received} of {count} messages in {timeout_s} s"
        )

    def close(self) -> None:
        self.stop.set()
        self._thread.join(30)


@pytest.fixture
def running_ingest(request: pytest.FixtureRequest, settings: Settings) -> Iterator[RunningIngest]:
    """Ingest on the test's settings (its registered_settings, when the test asks for those)."""
    if "registered_settings" in request.fixturenames:
        settings = request.getfixturevalue("registered_settings")
    ingest = RunningIngest(settings)
    ingest.start()
    yield ingest
    ingest.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed and any(
        name in getattr(item, "fixturenames", ()) for name in ("settings", *SERVER_FIXTURES)
    ):
        for name, server in _started.items():
            report.sections.append((f"{name} log (last lines)", server.log_tail(60)))
    return report
