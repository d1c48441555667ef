"""Speaks InfluxDB's v1-compatible HTTP API: /ping, /write (line protocol), /query (InfluxQL).

The one tested path to InfluxDB 1.x natively, 2.x through DBRP mappings and
3 Core through its v1 compatibility API. It classifies failures (retry,
stop, refuse) but never retries or drops anything itself: callers decide.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from smartplace.config import InfluxSettings
from smartplace.errors import InfluxAuthError, InfluxError, InfluxUnavailableError

Row = dict[str, Any]


def quote_identifier(name: str) -> str:
    """An InfluxQL identifier in double quotes, with quotes and backslashes escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes, with quotes and backslashes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxClient:
    """A thin synchronous client; one per thread (httpx.Client is not shared across threads)."""

    def __init__(self, settings: InfluxSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        headers = {}
        auth: tuple[str, str] | None = None
        if settings.token is not None:
            headers["Authorization"] = f"Token {settings.token.get_secret_value()}"
        elif settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            auth = (settings.username, password)
        self._http = http or httpx.Client(
            base_url=settings.url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=settings.timeout_s,
            verify=settings.verify_tls,
        )

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------

    def write(self, lines: Iterable[str], retention_policy: str, precision: str = "ns") -> int:
        """Write line-protocol lines in one gzip request; returns the number of lines sent."""
        body = "\n".join(lines).encode()
        if not body:
            return 0
        response = self._request(
            "POST",
            "/write",
            params={
                "db": self.settings.database,
                "rp": retention_policy,
                "precision": precision,
            },
            content=gzip.compress(body, compresslevel=1),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
        )
        if response.status_code != 204:
            raise InfluxError(
                f"InfluxDB refused a write ({response.status_code}): {_error_text(response)}",
                response.status_code,
            )
        return body.count(b"\n") + 1

    def query(
        self, statement: str, params: Mapping[str, Any] | None = None, *, database: bool = True
    ) -> list[dict[str, Any]]:
        """Run InfluxQL; returns the raw ``results`` list. Bind user values with ``params``."""
        data: dict[str, str] = {"q": statement, "epoch": "ns"}
        if database:
            data["db"] = self.settings.database
        if params:
            data["params"] = orjson.dumps(dict(params)).decode()
        response = self._request("POST", "/query", data=data)
        if response.status_code != 200:
            raise InfluxError(
                f"InfluxDB refused a query ({response.status_code}): {_error_text(response)}",
                response.status_code,
            )
        results: list[dict[str, Any]] = orjson.loads(response.content).get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"InfluxQL error: {result['error']} in: {statement}")
        return results

    def query_rows(
        self, statement: str, params: Mapping[str, Any] | None = None, *, database: bool = True
    ) -> list[Row]:
        """Rows of every series of every result, each a dict of its columns and tags."""
        rows: list[Row] = []
        for result in self.query(statement, params, database=database):
            for series in result.get("series", []):
                tags = series.get("tags", {})
                columns = series["columns"]
                for values in series.get("values", []):
                    rows.append({**tags, **dict(zip(columns, values, strict=True))})
        return rows

    def ensure_storage(self) -> None:
        """Create the database and its raw and agg retention policies when missing (1.x)."""
        s = self.settings
        db = quote_identifier(s.database)
        names = {row["name"] for row in self.query_rows("SHOW DATABASES", database=False)}
        if s.database not in names:
            self.query(f"CREATE DATABASE {db}", database=False)
        policies = {
            row["name"]
            for row in self.query_rows(f"SHOW RETENTION POLICIES ON {db}", database=False)
        }
        if s.raw_retention_policy not in policies:
            self.query(
                f"CREATE RETENTION POLICY {quote_identifier(s.raw_retention_policy)} ON {db} "
                f"DURATION {s.raw_retention} REPLICATION 1 DEFAULT",
                database=False,
            )
        if s.agg_retention_policy not in policies:
            self.query(
                f"CREATE RETENTION POLICY {quote_identifier(s.agg_retention_policy)} ON {db} "
                "DURATION INF REPLICATION 1",
                database=False,
            )

    # -- internals -----------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise InfluxUnavailableError(
                f"InfluxDB at {self.settings.url} timed out: {exc}"
            ) from exc
        except httpx.TransportError as exc:
            raise InfluxUnavailableError(
                f"cannot reach InfluxDB at {self.settings.url} ({exc}); is it running? "
                "('smartplace up' starts a local one)"
            ) from exc
        if response.status_code in (401, 403):
            raise InfluxAuthError(
                f"InfluxDB rejected our credentials ({response.status_code}): {_error_text(response)}; "
                "check SMARTPLACE_INFLUX__TOKEN or SMARTPLACE_INFLUX__USERNAME/PASSWORD",
                response.status_code,
            )
        if response.status_code >= 500:
            raise InfluxUnavailableError(
                f"InfluxDB answered {response.status_code}: {_error_text(response)}",
                response.status_code,
            )
        return response


def _error_text(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text.strip()[:500]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])[:500]
    return response.text.strip()[:500]
