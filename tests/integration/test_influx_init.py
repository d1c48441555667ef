"""deploy/influxdb/init.sh, run as the influxdb:1.11 image runs it, against a real influxd with auth on.

The image sources each /docker-entrypoint-initdb.d/*.sh with ``$INFLUX_CMD``
(the influx CLI logged in as admin) once the admin account and database exist
(influxdata-docker influxdb/1.11/init-influxdb.sh:63,114-117). Debian ships no
influx CLI here, so ``$INFLUX_CMD`` is a few lines of curl that fail on any
error InfluxDB answers, as the CLI's -execute does.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smartplace.stack import free_port
from smartplace.stack.influxd import InfluxdServer, find_influxd

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("admin", secrets.token_urlsafe(12))
PASSWORDS = {name: secrets.token_urlsafe(12) for name in ("ingest", "grafana", "feeds")}


class AuthInfluxd(InfluxdServer):
    def prepare(self) -> None:
        super().prepare()
        text = self.config_path.read_text()
        self.config_path.write_text(text.replace("auth-enabled = false", "auth-enabled = true", 1))


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("influxd-auth")
    server = AuthInfluxd(find_influxd(), base, free_port(), free_port())
    server.start()
    try:
        url = server.url
        # What the image does before the scripts: the admin account, then the database.
        first = httpx.post(
            f"{url}/query",
            data={"q": f"CREATE USER {ADMIN[0]} WITH PASSWORD '{ADMIN[1]}' WITH ALL PRIVILEGES"},
        )
        assert first.status_code == 200, first.text
        made = httpx.post(f"{url}/query", data={"q": "CREATE DATABASE smartplace"}, auth=ADMIN)
        assert "error" not in made.text
        cli = base / "influx-execute"
        cli.write_text(
            "#!/bin/sh\n"
            f'out=$(curl -sS -u "{ADMIN[0]}:{ADMIN[1]}" -XPOST {url}/query'
            ' --data-urlencode "q=$1") || exit 1\n'
            'case "$out" in *\'"error"\'*) echo "$out" >&2; exit 1 ;; esac\n'
        )
        cli.chmod(0o755)
        env = {
            **os.environ,
            "INFLUX_CMD": str(cli),
            **{f"INFLUXDB_{n.upper()}_PASSWORD": p for n, p in PASSWORDS.items()},
        }
        subprocess.run(
            ["sh", "-c", f'set -e; . "{ROOT / "deploy/influxdb/init.sh"}"'], env=env, check=True
        )
        yield url
    finally:
        server.stop()


def _query(url: str, user: str, statement: str) -> httpx.Response:
    return httpx.post(
        f"{url}/query", data={"q": statement, "db": "smartplace"}, auth=(user, PASSWORDS[user])
    )


def _write(url: str, user: str, line: str) -> httpx.Response:
    return httpx.post(
        f"{url}/write",
        params={"db": "smartplace", "rp": "raw"},
        content=line.encode(),
        auth=(user, PASSWORDS[user]),
    )


def test_it_creates_the_two_retention_policies_raw_the_default(initialised: str) -> None:
    rows = httpx.post(
        f"{initialised}/query", data={"q": "SHOW RETENTION POLICIES ON smartplace"}, auth=ADMIN
    ).json()["results"][0]["series"][0]["values"]
    policies = {row[0]: (row[1], row[4]) for row in rows}
    assert policies["raw"] == ("720h0m0s", True)
    assert policies["agg"] == ("0s", False)


def test_ingest_may_write_and_read_its_database_and_is_no_admin(initialised: str) -> None:
    assert _write(initialised, "ingest", "probe,site=a v=1").status_code == 204
    read = _query(initialised, "ingest", 'SELECT * FROM "raw"."probe"')
    assert '"a"' in read.text  # it reads raw points back to rebuild open windows
    refused = _query(initialised, "ingest", "CREATE USER \"mallory\" WITH PASSWORD 'x'")
    assert "not authorized" in refused.text


@pytest.mark.parametrize("reader", ["grafana", "feeds"])
def test_grafana_and_feeds_may_read_and_never_write_or_drop(initialised: str, reader: str) -> None:
    _write(initialised, "ingest", "probe,site=b v=2")
    read = _query(initialised, reader, 'SHOW TAG VALUES FROM "raw"."probe" WITH KEY = "site"')
    assert read.status_code == 200
    assert '"b"' in read.text
    assert _write(initialised, reader, "probe,site=c v=3").status_code == 403
    dropped = _query(initialised, reader, 'DROP MEASUREMENT "probe"')
    assert "not authorized" in dropped.text
    assert (
        '"b"'
        in _query(initialised, reader, 'SHOW TAG VALUES FROM "raw"."probe" WITH KEY = "site"').text
    )
