"""A certificate authority of our own and a server certificate it signs, for a TLS listener.

``smartplace up`` and the tests make the local broker's certificates with this
one function, with the openssl command line (``scripts/setup`` installs it);
the README's commands for docker-compose's broker are the same ones. Every
file is 0600 in a 0700 directory. It never touches a certificate it did not
make: a directory holding a complete, unexpired set is used as it is.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from smartplace.errors import ConfigError, ServerStartError
from smartplace.private_files import PRIVATE_FILE_MODE, private_dir, write_private_text
from smartplace.stack.process import server_environment

LOCAL_NAMES = ("localhost", "127.0.0.1")
"""What the local broker's certificate is for: the stack listens on 127.0.0.1 only."""
CA_DAYS = 3650
SERVER_DAYS = 825
"""The longest lifetime Apple's TLS clients accept for a server certificate (and many follow)."""
RENEW_BEFORE_S = 30 * 24 * 3600
"""A set whose server certificate expires sooner than this is made again."""
CA_NAME = "smartplace local CA"

# Our own config, so that neither the distribution's openssl.cnf nor its defaults add to
# or clash with these extensions. A CA that says it is one (basicConstraints, and keyUsage,
# without which a strict verifier, VERIFY_X509_STRICT as Python 3.13 sets by default,
# refuses it: "CA cert does not include key usage extension", tests/unit/test_tls.py),
# key identifiers (RFC 5280 4.2.1.1-2), and a server certificate for serverAuth with its
# names as subject alternative names, which is what clients match (RFC 6125 6.4).
OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {names}
"""


@dataclass(frozen=True)
class TlsFiles:
    """A certificate set in one directory, under the names docker-compose's broker mounts."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """What clients trust (``SMARTPLACE_MQTT__TLS_CA_FILE``): not secret."""
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """Signs server certificates; never leaves this directory."""
        return self.directory / "ca.key"

    @property
    def cert(self) -> Path:
        """The broker's certificate (mosquitto's ``certfile``)."""
        return self.directory / "server.crt"

    @property
    def key(self) -> Path:
        """The broker's private key (mosquitto's ``keyfile``)."""
        return self.directory / "server.key"

    def all(self) -> tuple[Path, ...]:
        return (self.ca_cert, self.ca_key, self.cert, self.key)


_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
"""A host name's label (RFC 1123 2.1): letters, digits and inner hyphens, 63 at most."""


def subject_alt_names(names: Sequence[str]) -> str:
    """``DNS:localhost, IP:127.0.0.1``: an address as an IP entry, which is what clients
    match an address against (RFC 6125 6.2.1), a host name (or ``*.`` and one) as a DNS name.

    Anything else is a ConfigError: each name goes into openssl's config and ``-subj`` as it
    is, where a newline, comma or slash would add lines, names or subject fields."""
    entries = []
    for name in names:
        try:
            address = ip_address(name)
        except ValueError:
            host = name.removeprefix("*.")
            if len(name) > 253 or not all(_LABEL.fullmatch(part) for part in host.split(".")):
                raise ConfigError(f"not a host name or an IP address: {name!r}") from None
            entries.append(f"DNS:{name}")
        else:
            if getattr(address, "scope_id", None):  # fe80::1%eth0: no certificate names that
                raise ConfigError(f"not a host name or an IP address: {name!r}")
            entries.append(f"IP:{address}")
    return ", ".join(entries)


def ensure_certificates(directory: Path, names: Sequence[str] = LOCAL_NAMES) -> TlsFiles:
    """The certificate set in ``directory``, made there first when it is not complete or
    its server certificate expires within RENEW_BEFORE_S (then all of it is made again, and
    clients read the new CA from the same path). A name that is neither a host name nor an
    IP address is a ConfigError, before anything is made."""
    files = TlsFiles(directory)
    alt_names = subject_alt_names(names)  # first: a name that is not one makes nothing
    private_dir(directory)
    if all(path.is_file() for path in files.all()) and _valid_for(files.cert, RENEW_BEFORE_S):
        for path in files.all():
            path.chmod(PRIVATE_FILE_MODE)
        return files
    work = Path(tempfile.mkdtemp(prefix=".new-", dir=directory))  # 0700, as mkdtemp makes it
    try:
        _make(TlsFiles(work), names, alt_names)
        for made, final in zip(TlsFiles(work).all(), files.all(), strict=True):
            made.replace(final)  # each whole; the key last, as its certificate is in place
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return files


def _make(files: TlsFiles, names: Sequence[str], alt_names: str) -> None:
    config = files.directory / "openssl.cnf"
    write_private_text(config, OPENSSL_CONFIG.format(names=alt_names))
    csr = files.directory / "server.csr"
    new_ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *new_ec_key, "-config", str(config), "-extensions", "ca",
        "-subj", f"/CN={CA_NAME}", "-days", str(CA_DAYS), "-sha256",
        "-keyout", str(files.ca_key), "-out", str(files.ca_cert),
    )  # fmt: skip
    _openssl(
        "req", "-new", *new_ec_key, "-config", str(config),
        "-subj", f"/CN={_common_name(names)}", "-keyout", str(files.key), "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(files.ca_cert), "-CAkey", str(files.ca_key),
        # a random serial: no serial file to keep, and never two certificates with one
        "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(SERVER_DAYS), "-sha256",
        "-extfile", str(config), "-extensions", "server", "-out", str(files.cert),
    )  # fmt: skip
    for path in files.all():
        path.chmod(PRIVATE_FILE_MODE)


COMMON_NAME_MAX = 64
"""ub-common-name (RFC 5280 appendix A.1): openssl refuses a longer CN; a host name may be 253."""


def _common_name(names: Sequence[str]) -> str:
    """The subject's CN: the first name that fits in one. Clients match the alternative names
    (RFC 6125 6.4.4), which hold every name, so a CN that is none of them costs nothing."""
    return next((name for name in names if len(name) <= COMMON_NAME_MAX), "smartplace broker")


def _valid_for(cert: Path, seconds: int) -> bool:
    """True when ``cert`` is a certificate that is still valid ``seconds`` from now."""
    result = subprocess.run(
        [_openssl_binary(), "x509", "-noout", "-checkend", str(seconds), "-in", str(cert)],
        capture_output=True,
        env=server_environment(),
        check=False,
    )
    return result.returncode == 0


def _openssl(*args: str) -> None:
    # umask 077: openssl writes each key 0600 from the moment it exists
    result = subprocess.run(
        [_openssl_binary(), *args],
        capture_output=True,
        text=True,
        env=server_environment(),
        umask=0o077,
        check=False,
    )
    if result.returncode != 0:
        raise ServerStartError(
            f"'openssl {args[0]}' could not make the broker's TLS certificates: "
            + (result.stderr.strip().splitlines() or ["no error output"])[-1]
        )


def _openssl_binary() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise ServerStartError(
            "openssl is not installed; it makes the local broker's TLS certificates"
            " (install it with 'sudo apt-get install openssl', or run scripts/setup)"
        )
    return found
