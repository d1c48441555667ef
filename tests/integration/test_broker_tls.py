"""The broker's TLS listener, as devices meet it: real mosquitto, certificates made by the
code 'smartplace up' uses (stack/tls.py), readings through to a real influxd.

The session broker (tests/conftest.py) has a TLS listener beside its plain one, as the
local stack's has; a test needing another certificate starts a broker of its own.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from smartplace.accounts import simulator_client_id
from smartplace.config import MqttSettings, Settings
from smartplace.devices.dynsec import Dynsec
from smartplace.errors import ConfigError, MqttError
from smartplace.influx import InfluxClient
from smartplace.ingest.receive.mqtt_wire import Subscription
from smartplace.ingest.receive.subscriber import MqttSubscriber
from smartplace.publisher import Publisher
from smartplace.stack import MosquittoServer, free_port
from smartplace.stack.tls import TlsFiles, ensure_certificates
from tests.conftest import RunningIngest, another_broker

from .helpers import points, publish_all, reading_message, run_smartplace

pytestmark = pytest.mark.integration

NS = 1_000_000_000


@pytest.fixture
def tls_settings(settings: Settings, mosquitto: MosquittoServer) -> Settings:
    """The test's settings with MQTT through the broker's TLS listener, trusting its CA."""
    return settings.model_copy(update={"mqtt": mosquitto.tls_settings(settings.mqtt)})


def _readings(count: int) -> list[dict[str, Any]]:
    t0 = (time.time_ns() // (60 * NS) - 10) * 60 * NS
    return [
        {"device_id": "aq-0001", "ts": (t0 + i * NS) // 1_000_000, "pm25_ugm3": float(i)}
        for i in range(count)
    ]


def _subscriber(mqtt: MqttSettings) -> MqttSubscriber:
    return MqttSubscriber(mqtt, [Subscription(f"{mqtt.topic_prefix}/#", 1)], 1 << 20, 1 << 18)


def _publisher(mqtt: MqttSettings) -> Publisher:
    return Publisher(mqtt, simulator_client_id(mqtt), mqtt.simulator_account())


@pytest.mark.parametrize("ingest_over", ["plain", "tls"])
def test_readings_published_over_tls_are_stored(
    settings: Settings,
    tls_settings: Settings,
    influx: InfluxClient,
    ingest_over: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Devices publish over TLS; ingest reads on the plain listener (as on compose's
    # internal network and in 'smartplace up'), or over TLS itself.
    ingest_settings = tls_settings if ingest_over == "tls" else settings
    ingest = RunningIngest(ingest_settings)
    with caplog.at_level(logging.INFO, logger="smartplace.ingest.receive.subscriber"):
        ingest.start()
    try:
        scheme = "mqtts" if ingest_over == "tls" else "mqtt"
        connected = [r.getMessage() for r in caplog.records if "mqtt connected" in r.getMessage()]
        assert connected[0].startswith(
            f"mqtt connected broker={scheme}://127.0.0.1:{ingest_settings.mqtt.port} "
        )
        readings = _readings(20)
        sent = publish_all(
            tls_settings,
            [reading_message(tls_settings, "aq-0001", reading) for reading in readings],
        )
        ingest.wait_for_received(sent)
    finally:
        ingest.close()
    stored = sorted((p["time"], p["pm25_ugm3"]) for p in points(influx, "raw", "air_quality"))
    assert stored == [(r["ts"] * 1_000_000, r["pm25_ugm3"]) for r in readings]


def test_a_client_that_does_not_trust_the_ca_is_refused(
    tls_settings: Settings, tmp_path: Path
) -> None:
    stranger = ensure_certificates(tmp_path / "another-ca")
    mqtt = tls_settings.mqtt.model_copy(update={"tls_ca_file": stranger.ca_cert})
    expected = (
        f"the MQTT broker at mqtts://127.0.0.1:{mqtt.port} has a certificate we do not trust"
        " (unable to get local issuer certificate): SMARTPLACE_MQTT__TLS_CA_FILE"
        f" ({stranger.ca_cert}) must be the CA that signed it, and the host name one it names"
    )
    with pytest.raises(MqttError) as published:
        _publisher(mqtt).start(timeout_s=10)
    assert str(published.value) == expected
    with pytest.raises(MqttError) as ingested:
        _subscriber(mqtt).start(timeout_s=10)
    assert str(ingested.value) == expected

    result = run_smartplace(_env(mqtt), "simulate", "--duration-s", "1")
    assert (result.returncode, result.stderr) == (1, f"error: {expected}\n")


def test_a_certificate_for_another_name_is_refused(
    settings: Settings, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    # The right CA, but a certificate for a host name the client did not ask for.
    elsewhere = ensure_certificates(tmp_path / "tls", names=("mqtt.council.example",))
    broker = _broker_serving(mosquitto, tmp_path / "broker", elsewhere)
    broker.start()
    try:
        mqtt = broker.tls_settings(settings.mqtt)
        with pytest.raises(MqttError) as refused:
            _publisher(mqtt).start(timeout_s=10)
        assert str(refused.value) == (
            f"the MQTT broker at mqtts://127.0.0.1:{mqtt.port} has a certificate we do not"
            " trust (IP address mismatch, certificate is not valid for '127.0.0.1'.):"
            f" SMARTPLACE_MQTT__TLS_CA_FILE ({elsewhere.ca_cert}) must be the CA that signed"
            " it, and the host name one it names"
        )
    finally:
        broker.stop()


def test_plain_mqtt_to_the_tls_port_fails_at_once_and_says_why(
    settings: Settings, tls_settings: Settings
) -> None:
    plain = tls_settings.mqtt.model_copy(update={"tls_ca_file": None})
    expected = (
        f"the MQTT broker at mqtt://127.0.0.1:{plain.port} closed the connection without"
        f" answering CONNECT (as a TLS listener does to plain MQTT: is {plain.port} a TLS"
        " port? Then set SMARTPLACE_MQTT__TLS_CA_FILE)"
    )
    began = time.monotonic()
    with pytest.raises(MqttError) as published:
        _publisher(plain).start(timeout_s=20)
    assert str(published.value) == expected
    with pytest.raises(MqttError) as ingested:
        _subscriber(plain).start(timeout_s=20)
    assert str(ingested.value) == expected
    assert time.monotonic() - began < 10  # neither waited for its timeout


def test_tls_to_the_plain_port_fails_and_says_why(
    settings: Settings, mosquitto: MosquittoServer
) -> None:
    assert mosquitto.tls is not None
    mqtt = settings.mqtt.model_copy(update={"tls_ca_file": mosquitto.tls[1].ca_cert})
    attempts: list[Callable[[], None]] = [
        lambda: _publisher(mqtt).start(timeout_s=10),
        lambda: _subscriber(mqtt).start(timeout_s=10),
    ]
    for attempt in attempts:
        with pytest.raises(MqttError) as failed:
            attempt()
        assert str(failed.value).startswith(
            f"no TLS handshake with the MQTT broker at mqtts://127.0.0.1:{mqtt.port} ("
        )
        assert str(failed.value).endswith(f"); is {mqtt.port} its TLS port, not a plain one?")


def _broker_serving(
    mosquitto: MosquittoServer, directory: Path, files: TlsFiles
) -> MosquittoServer:
    """A broker of its own (the session's one has the test CA) with this certificate set."""
    return another_broker(mosquitto, directory, tls=(free_port(), files))


def _env(mqtt: MqttSettings) -> dict[str, str]:
    return {
        "SMARTPLACE_MQTT__PORT": str(mqtt.port),
        "SMARTPLACE_MQTT__TLS_CA_FILE": str(mqtt.tls_ca_file or ""),
        "SMARTPLACE_MQTT__TOPIC_PREFIX": mqtt.topic_prefix,
        "SMARTPLACE_MQTT__SIMULATOR_USERNAME": mqtt.simulator_username or "",
        "SMARTPLACE_MQTT__SIMULATOR_PASSWORD": (
            mqtt.simulator_password.get_secret_value() if mqtt.simulator_password else ""
        ),
        "COLUMNS": "1000",  # one line however long
    }


@pytest.fixture
def junk_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "text.crt").write_text("hello\n")
    (tmp_path / "broken.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    )
    return {
        "missing": tmp_path / "nowhere" / "ca.crt",
        "text": tmp_path / "text.crt",
        "broken": tmp_path / "broken.crt",
        "directory": tmp_path,
    }


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("missing", "cannot be read: No such file or directory"),
        ("directory", "cannot be read: Is a directory"),
        (
            "text",
            "holds no CA certificate in PEM form (NO_CERTIFICATE_OR_CRL_FOUND): give the CA"
            " that signed the broker's certificate, e.g. .smartplace/tls/ca.crt",
        ),
        (
            "broken",
            "holds no CA certificate in PEM form: give the CA that signed the broker's"
            " certificate, e.g. .smartplace/tls/ca.crt",
        ),
    ],
)
def test_a_ca_file_that_is_not_one_is_a_one_line_error(
    tls_settings: Settings, junk_files: dict[str, Path], case: str, why: str
) -> None:
    mqtt = tls_settings.mqtt.model_copy(update={"tls_ca_file": junk_files[case]})
    expected = f"SMARTPLACE_MQTT__TLS_CA_FILE ({junk_files[case]}) {why}"
    with pytest.raises(ConfigError) as published:
        _publisher(mqtt)
    assert str(published.value) == expected
    with pytest.raises(ConfigError) as ingested:
        _subscriber(mqtt).start(timeout_s=10)
    assert str(ingested.value) == expected
    for command in (["simulate", "--duration-s", "1"], ["ingest"]):
        result = run_smartplace(
            {
                **_env(mqtt),
                "SMARTPLACE_INFLUX__URL": tls_settings.influx.url,
                "SMARTPLACE_INFLUX__DATABASE": tls_settings.influx.database,
                "SMARTPLACE_INGEST__SPOOL_DIR": str(junk_files["directory"] / "spool"),
                "SMARTPLACE_INGEST__HTTP_PORT": "0",
            },
            *command,
        )
        assert result.returncode == 1, command
        assert result.stderr.splitlines()[-1] == f"error: {expected}", command
        assert "Traceback" not in result.stderr, command


def test_broker_certificates_makes_a_set_a_broker_serves_and_never_replaces_it(
    settings: Settings, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    directory = tmp_path / "certs"
    made = run_smartplace(
        {"COLUMNS": "1000"}, "broker", "certificates", "localhost", "--dir", str(directory)
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout == (
        f"Made a CA and a broker certificate for localhost in {directory}/. Devices trust"
        " ca.crt; ca.key signs certificates. The broker needs neither: move both somewhere"
        " safe first, as once the directory is uid 1883's (mosquitto reads the rest as that"
        f" user: sudo chown -R 1883:1883 {directory}) only root can read it.\n"
    )
    files = TlsFiles(directory)
    ca = files.ca_cert.read_bytes()
    again = run_smartplace(
        {"COLUMNS": "1000"}, "broker", "certificates", "localhost", "--dir", str(directory)
    )
    assert (again.returncode, again.stderr) == (
        1,
        f"error: {directory} already holds ca.crt, ca.key, server.crt, server.key: devices may"
        " trust that CA; delete the files first to make a new one\n",
    )
    assert files.ca_cert.read_bytes() == ca
    broker = _broker_serving(mosquitto, tmp_path / "broker", files)
    broker.start()
    try:
        mqtt = broker.tls_settings(settings.mqtt).model_copy(update={"host": "localhost"})
        with Dynsec(mqtt, broker.admin) as dynsec:  # the admin logs in over TLS, by name
            dynsec.ensure_service_accounts(mqtt)
    finally:
        broker.stop()


def _handshake(port: int, ca_file: Path, version: ssl.TLSVersion) -> str:
    context = ssl.create_default_context(cafile=str(ca_file))
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that only the broker can refuse it
    context.minimum_version = context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        return str(sock.version())


def test_the_tls_listener_speaks_tls_1_2_and_1_3_and_refuses_older(
    mosquitto: MosquittoServer,
) -> None:
    assert mosquitto.tls is not None
    port, files = mosquitto.tls
    assert _handshake(port, files.ca_cert, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert _handshake(port, files.ca_cert, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1_1 itself
        # the broker's alert (a client-side refusal would be "no protocols available")
        with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_PROTOCOL_VERSION"):
            _handshake(port, files.ca_cert, ssl.TLSVersion.TLSv1_1)


def test_tls_to_a_port_nothing_listens_on_says_the_broker_is_not_there(
    settings: Settings, mosquitto: MosquittoServer
) -> None:
    """Refused is no TLS/plain mix-up: a plain listener accepts the connection first."""
    assert mosquitto.tls is not None
    nobody = free_port()
    mqtt = settings.mqtt.model_copy(
        update={"port": nobody, "tls_ca_file": mosquitto.tls[1].ca_cert}
    )
    attempts: list[Callable[[], None]] = [
        lambda: _publisher(mqtt).start(timeout_s=5),
        lambda: _subscriber(mqtt).start(timeout_s=5),
    ]
    for attempt in attempts:
        with pytest.raises(MqttError) as failed:
            attempt()
        assert str(failed.value) == (
            f"cannot reach the MQTT broker at mqtts://127.0.0.1:{nobody} ([Errno 111]"
            " Connection refused); is it running? ('smartplace up' starts a local one)"
        )
