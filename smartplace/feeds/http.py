"""What HTTP asks of the feeds beyond routing: content negotiation with q-values, validators
made from the body, conditional requests, and refusing parameters nobody defined.

ETags are weak (``W/"..."``) hashes of the body as rendered: gzip may change the bytes on
the wire, never the content, and a correction to any value changes the hash. A weak
``If-None-Match`` is compared weakly, as RFC 9110 section 13.1.2 says.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.types import ASGIApp, Receive, Scope, Send


class NotAcceptableError(ValueError):
    pass


def weighted(header: str) -> list[tuple[str, float]]:
    """An Accept or Accept-Encoding header's items (lower case) with their q (RFC 9110
    section 12.4.2), in order; a q that is unreadable or outside 0..1 is 0, no consent."""
    items: list[tuple[str, float]] = []
    for part in header.split(","):
        item, *params = [p.strip().lower() for p in part.split(";")]
        if not item:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        items.append((item, q if 0.0 <= q <= 1.0 else 0.0))
    return items


def accepted(accept: str, offered: Mapping[str, str], default: str) -> str:
    """The offered format the client prefers: the highest q of the most specific media range
    that covers it (RFC 9110 section 12.5.1), ties to the range listed first, q=0 never.

    ``offered`` maps media types (``type/subtype``) to format names, in our preference.
    """
    if not accept.strip():
        return default
    ranges = weighted(accept)
    best: tuple[float, int, int] | None = None
    chosen = None
    for preference, (media_type, name) in enumerate(offered.items()):
        kind = media_type.split("/")[0]
        match: tuple[int, float, int] | None = None  # (specificity, q, position)
        for position, (media, q) in enumerate(ranges):
            specificity = (
                3
                if media == media_type
                else 2
                if media == f"{kind}/*"
                else 1
                if media == "*/*"
                else 0
            )
            if specificity and (match is None or specificity > match[0]):
                match = (specificity, q, position)
        if match is None or match[1] <= 0:
            continue
        rank = (match[1], -match[2], -preference)
        if best is None or rank > best:
            best, chosen = rank, name
    if chosen is None:
        raise NotAcceptableError(accept)
    return chosen


def etag_of(body: bytes | Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    if isinstance(body, bytes):
        digest.update(body)
    else:
        for chunk in body:
            digest.update(chunk)
    return f'W/"{digest.hexdigest()[:32]}"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def not_modified(headers: Mapping[str, str], etag: str, modified: datetime) -> bool:
    """Whether a GET or HEAD may be answered 304: If-None-Match (compared weakly) when sent,
    else If-Modified-Since (ignored when ahead of now or without a zone)."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        return _opaque(etag) in {_opaque(tag) for tag in if_none_match.split(",")}
    since = headers.get("if-modified-since")
    if since:
        try:
            client = parsedate_to_datetime(since)
            # A date ahead of our clock is not one we gave out (RFC 9110 section 13.1.3):
            # honouring it would tell a client with a fast clock its copy is always current.
            if client.tzinfo is None or client.timestamp() > time.time():
                return False
            return client >= modified.replace(microsecond=0)
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
    return False


class ModifiedBook:
    """When this process first served each body of each request: Last-Modified.

    InfluxDB does not say when a point was written, so a correction to an old value is only
    seen as a new body. The first time a request's body hash changes (or is first seen), it
    was modified "now"; until it changes again that time stands. Bounded: the oldest
    requests are forgotten first, and a forgotten one starts again at now (a client then
    downloads once more: never a stale 304).
    """

    def __init__(self, most: int = 20_000) -> None:
        self.most = most
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def modified(self, key: str, etag: str, newest_s: float | None = None) -> datetime:
        """``newest_s``: when the newest data in the body could have changed (never later
        than now); a body first seen is dated then rather than now when it is known."""
        now = time.time()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None or seen[0] != etag:
                first = now if seen is not None or newest_s is None else min(now, newest_s)
                seen = (etag, first)
                self._seen[key] = seen
            self._seen.move_to_end(key)
            while len(self._seen) > self.most:
                self._seen.popitem(last=False)
        return datetime.fromtimestamp(min(seen[1], now), UTC)


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def unknown_parameters(given: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The query parameters a request gave that the operation does not define, sorted."""
    return sorted(set(given) - set(allowed))


def repeated_parameters(given: Iterable[str]) -> list[str]:
    names = list(given)
    return sorted({name for name in names if names.count(name) > 1})


def gzip_accepted(accept_encoding: str) -> bool:
    """Whether Accept-Encoding allows gzip (RFC 9110 section 12.5.3): ``gzip`` or
    ``x-gzip`` (its old name), else ``*``, with a q above 0; codings are case-insensitive."""
    weights = dict(weighted(accept_encoding))
    for coding in ("gzip", "x-gzip", "*"):
        if coding in weights:
            return weights[coding] > 0
    return False


class AcceptEncodingMiddleware:
    """Hands the gzip middleware inside it an Accept-Encoding it reads right: Starlette's
    looks for the text "gzip" anywhere, so ``gzip;q=0`` (a refusal) got gzip."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"accept-encoding"]
            given = b", ".join(v for k, v in scope["headers"] if k == b"accept-encoding")
            if gzip_accepted(given.decode("latin-1")):
                headers.append((b"accept-encoding", b"gzip"))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
