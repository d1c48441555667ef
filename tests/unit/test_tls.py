"""The certificates 'smartplace up' and the tests give the broker (stack/tls.py), checked by
a real TLS handshake in this process and by openssl, not by reading our own code back."""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from smartplace.config import MqttSettings
from smartplace.errors import ConfigError
from smartplace.stack import tls
from smartplace.stack.mosquitto import render_local_config
from smartplace.stack.tls import TlsFiles, ensure_certificates, subject_alt_names

NAMES = ("ca.crt", "ca.key", "server.crt", "server.key")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _handshake(files: TlsFiles, server_hostname: str, ca_file: Path) -> str:
    """A TLS handshake over a socket pair, the server with ``files``; its TLS version."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(files.cert, files.key)
    client_context = ssl.create_default_context(cafile=str(ca_file))
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
    server_side, client_side = socket.socketpair()
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            with server_context.wrap_socket(server_side, server_side=True):
                pass
        except (ssl.SSLError, OSError) as exc:
            failures.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_context.wrap_socket(client_side, server_hostname=server_hostname) as sock:
            return str(sock.version())
    finally:
        thread.join(10)


def test_a_set_is_made_once_with_private_modes_and_kept(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    files = ensure_certificates(directory)
    assert sorted(p.name for p in directory.iterdir()) == sorted(NAMES)  # no request, no config
    assert _mode(directory) == 0o700
    assert {p.name: _mode(p) for p in files.all()} == dict.fromkeys(NAMES, 0o600)
    made = {p.name: p.read_bytes() for p in files.all()}
    files.ca_cert.chmod(0o644)  # an older run's mode is put right
    assert ensure_certificates(directory) == files
    assert {p.name: p.read_bytes() for p in files.all()} == made
    assert _mode(files.ca_cert) == 0o600


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_clients_that_trust_its_ca_verify_it_strictly_by_either_local_name(
    tmp_path: Path, name: str
) -> None:
    files = ensure_certificates(tmp_path / "tls")
    assert _handshake(files, name, files.ca_cert) in {"TLSv1.2", "TLSv1.3"}
    checked = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
         str(files.ca_cert), str(files.cert)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (checked.returncode, checked.stdout) == (0, f"{files.cert}: OK\n")


def test_another_ca_or_another_name_is_refused(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls")
    other = ensure_certificates(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _handshake(files, "127.0.0.1", other.ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(files, "mqtt.council.example", files.ca_cert)


def test_a_missing_file_or_an_expiring_certificate_makes_the_whole_set_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = ensure_certificates(tmp_path / "tls")
    first_ca = files.ca_cert.read_bytes()
    files.key.unlink()
    ensure_certificates(files.directory)
    second_ca = files.ca_cert.read_bytes()
    assert second_ca != first_ca
    assert files.key.is_file()
    assert _handshake(files, "127.0.0.1", files.ca_cert)
    # valid for SERVER_DAYS: asked to last a day longer, it is made again
    monkeypatch.setattr(tls, "RENEW_BEFORE_S", (tls.SERVER_DAYS + 1) * 86_400)
    ensure_certificates(files.directory)
    assert files.ca_cert.read_bytes() != second_ca


def test_names_become_ip_or_dns_alternative_names() -> None:
    assert subject_alt_names(["localhost", "127.0.0.1", "::1", "mqtt.council.example"]) == (
        "DNS:localhost, IP:127.0.0.1, IP:::1, DNS:mqtt.council.example"
    )


def test_the_local_broker_gets_a_tls_listener_with_those_files(tmp_path: Path) -> None:
    files = TlsFiles(tmp_path / "tls")
    config = render_local_config(
        "127.0.0.1", 1883, tmp_path, tmp_path / "log", Path("/p.so"), tmp_path / "d.json",
        tls=(8883, files),
    )  # fmt: skip
    assert "\nlistener 1883 127.0.0.1\n" in config
    assert (
        f"\nlistener 8883 127.0.0.1\ncertfile {files.cert}\nkeyfile {files.key}\n"
        "tls_version tlsv1.2\nrequire_certificate false\n" in config
    )


def test_a_ca_file_that_is_not_one_is_a_config_error(tmp_path: Path) -> None:
    from smartplace.broker import tls_context

    (tmp_path / "empty.crt").write_text("")
    with pytest.raises(ConfigError, match=r"holds no CA certificate in PEM form"):
        tls_context(MqttSettings(tls_ca_file=tmp_path / "empty.crt"))
    assert tls_context(MqttSettings()) is None
    context = tls_context(MqttSettings(tls_ca_file=ensure_certificates(tmp_path / "t").ca_cert))
    assert context is not None
    assert (context.minimum_version, context.check_hostname, context.verify_mode) == (
        ssl.TLSVersion.TLSv1_2,
        True,
        ssl.CERT_REQUIRED,
    )


@pytest.mark.parametrize(
    "name",
    [
        # a newline would add a line to the openssl config: here basicConstraints CA:TRUE,
        # making the broker's certificate a CA devices trust to sign any name
        "mqtt.council.example\nbasicConstraints = critical, CA:TRUE",
        "mqtt.council.example, DNS:evil.example",  # a comma adds an alternative name
        "mqtt.council.example/O=Evil",  # a slash adds a field to the subject (-subj)
        "",
        "mqtt..council.example",
        "mqtt.council.example.",
        "-mqtt.council.example",
        "mqtt_broker.council.example",
        "fe80::1%eth0",  # an address with a zone is no certificate's address
        "a" * 64 + ".example",  # a label longer than 63
        ("a" * 62 + ".") * 4 + "example",  # a name longer than 253
    ],
)
def test_a_name_that_is_not_a_host_name_or_address_is_refused_before_anything_is_made(
    tmp_path: Path, name: str
) -> None:
    directory = tmp_path / "tls"
    with pytest.raises(ConfigError, match=r"^not a host name or an IP address: "):
        ensure_certificates(directory, ["localhost", name])
    assert not directory.exists()


def test_wildcard_dns_names_and_addresses_are_names() -> None:
    assert subject_alt_names(["*.council.example", "MQTT-1.Council.Example", "10.0.0.5"]) == (
        "DNS:*.council.example, DNS:MQTT-1.Council.Example, IP:10.0.0.5"
    )


def test_a_name_longer_than_a_common_name_may_be_is_still_the_certificates_name(
    tmp_path: Path,
) -> None:
    long_name = "a" * 40 + ".mqtt." + "b" * 40 + ".council.example"  # 98: a CN holds 64
    files = ensure_certificates(tmp_path / "tls", [long_name])
    assert _handshake(files, long_name, files.ca_cert) in {"TLSv1.2", "TLSv1.3"}


def test_a_ca_file_that_is_a_pipe_is_a_config_error_not_a_wait(tmp_path: Path) -> None:
    """Reading a FIFO (or /dev/stdin) blocks until a writer comes: the client never starts."""
    import os

    from smartplace.broker import tls_context

    fifo = tmp_path / "ca.crt"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"\(.*ca\.crt\) is not a regular file$"):
        tls_context(MqttSettings(tls_ca_file=fifo))
