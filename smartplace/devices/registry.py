"""The device registry: one SQLite file, schema versioned by PRAGMA user_version.

The provisioning CLI is its only writer. Ingest never opens it: it learns
devices from the retained messages the CLI publishes. Device secrets are
stored only as salted PBKDF2 hashes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from smartplace.devices.model import DeviceRecord
from smartplace.errors import SmartplaceError
from smartplace.private_files import create_private_file

# Append only: each entry takes the schema from version N to N+1.
MIGRATIONS: Sequence[str] = (
    """
    CREATE TABLE devices (
        device_id    TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        site         TEXT,
        profile      TEXT,
        latitude     REAL,
        longitude    REAL,
        installed_on TEXT,
        status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
        metadata     TEXT NOT NULL DEFAULT '{}',
        secret_hash  TEXT,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX devices_by_site ON devices (site);
    CREATE INDEX devices_by_kind ON devices (kind);
    """,
)
# Secrets are 190 random bits, not passwords people choose: no brute force reaches them, so a
# slow hash guards nothing and would make importing thousands of devices take minutes.
PBKDF2_ITERATIONS = 1_000
RECORD_COLUMNS = (
    "device_id",
    "kind",
    "site",
    "profile",
    "latitude",
    "longitude",
    "installed_on",
    "status",
)
"""A device record's plain columns, in the order listings and exports show them."""
_COLUMNS = (*RECORD_COLUMNS, "metadata")
# Statements are built from the fixed column names above only; every value is a bound parameter.
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM devices"  # noqa: S608
_PLACEHOLDERS = ", ".join("?" * (len(_COLUMNS) + 3))
_INSERT = f"INSERT INTO devices ({', '.join(_COLUMNS)}, secret_hash, created_at, updated_at) VALUES ({_PLACEHOLDERS})"  # noqa: S608
_ASSIGN = ", ".join(f"{c} = ?" for c in _COLUMNS[1:])
_UPDATE = f"UPDATE devices SET {_ASSIGN}, updated_at = ? WHERE device_id = ?"  # noqa: S608


class RegistryError(SmartplaceError):
    pass


def new_secret() -> str:
    """A device password: 24 random bytes, URL-safe text (about 190 bits)."""
    return secrets.token_urlsafe(24)


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, PBKDF2_ITERATIONS)
    return f"pbkdf2-sha512${PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    _scheme, iterations, salt, digest = stored.split("$")
    candidate = hashlib.pbkdf2_hmac("sha512", secret.encode(), bytes.fromhex(salt), int(iterations))
    return secrets.compare_digest(candidate.hex(), digest)


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # 0600 before SQLite creates it with the umask's mode; its -wal and -shm files
            # take the database file's mode.
            create_private_file(path)
        except OSError as exc:
            raise RegistryError(f"cannot open the registry {path}: {exc.strerror}") from None
        self._db = sqlite3.connect(path, isolation_level=None)  # explicit transactions only
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise RegistryError(
                f"{self.path} has schema version {current}, newer than this smartplace ({len(MIGRATIONS)}): upgrade smartplace"
            )
        for version in range(current, len(MIGRATIONS)):
            with self.transaction():
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {version + 1}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- reads ---------------------------------------------------------------------

    def get(self, device_id: str) -> DeviceRecord | None:
        row = self._db.execute(_SELECT + " WHERE device_id = ?", (device_id,)).fetchone()
        return _record(row) if row else None

    def require(self, device_id: str) -> DeviceRecord:
        record = self.get(device_id)
        if record is None:
            raise RegistryError(f"no device {device_id!r} in the registry ({self.path})")
        return record

    def list(
        self, kind: str | None = None, site: str | None = None, status: str | None = None
    ) -> list[DeviceRecord]:
        clauses, params = [], []
        for column, value in (("kind", kind), ("site", site), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(_SELECT + where + " ORDER BY device_id", params)
        return [_record(row) for row in rows]

    def secret_hash(self, device_id: str) -> str | None:
        row = self._db.execute(
            "SELECT secret_hash FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        return row["secret_hash"] if row else None

    # -- writes (callers wrap several in transaction()) ----------------------------

    def insert(self, record: DeviceRecord, secret_hash: str | None) -> None:
        now = _now()
        try:
            self._db.execute(_INSERT, (*_values(record), secret_hash, now, now))
        except sqlite3.IntegrityError:
            raise RegistryError(f"device {record.device_id!r} is already registered") from None

    def update(self, record: DeviceRecord) -> None:
        cursor = self._db.execute(_UPDATE, (*_values(record)[1:], _now(), record.device_id))
        if cursor.rowcount == 0:
            raise RegistryError(f"no device {record.device_id!r} in the registry")

    def set_secret_hash(self, device_id: str, secret_hash: str) -> None:
        self._db.execute(
            "UPDATE devices SET secret_hash = ?, updated_at = ? WHERE device_id = ?",
            (secret_hash, _now(), device_id),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _values(record: DeviceRecord) -> tuple[Any, ...]:
    return (
        record.device_id,
        record.kind,
        record.site,
        record.profile,
        record.latitude,
        record.longitude,
        record.installed_on.isoformat() if record.installed_on else None,
        record.status,
        json.dumps(record.metadata, sort_keys=True),
    )


def _record(row: sqlite3.Row) -> DeviceRecord:
    data = dict(row)
    data["metadata"] = json.loads(data["metadata"])
    return DeviceRecord.model_validate({k: v for k, v in data.items() if v is not None})
