"""Missed TTS uplinks fetched from its Storage Integration and fed through the pipeline.

The Storage Integration keeps an application's upstream messages for a time.
``GET {server}/api/v3/as/applications/{application_id}/packages/storage/uplink_message``
(lorawan-stack api/ttn/lorawan/v3/applicationserver_integrations_storage.proto,
service ApplicationUpStorage, rpc GetStoredApplicationUp, its http binding) with
``after`` (a timestamp), ``order=received_at`` and ``Accept: text/event-stream``
streams the stored messages as newline-delimited JSON objects, each
``{"result": ApplicationUp}`` (an ``{"error": ...}`` object ends a failed stream),
where ApplicationUp has the same ``end_device_ids``, ``received_at`` and
``uplink_message`` as the MQTT integration's uplinks.

Each stored uplink is published to the project's broker at QoS 1 on the
topic the MQTT integration uses, so ingest decodes it like any other: a
frame it already has is refused as ``duplicate_frame``, and only the gap is
filled. Run it again and nothing new lands.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from smartplace.config import Settings
from smartplace.errors import SmartplaceError
from smartplace.lorawan.bridge import NOT_UTF8
from smartplace.publisher import gateway_publisher

_APPLICATION_RE = re.compile(r"^([a-z0-9][a-z0-9-]{1,35})@([a-z0-9][a-z0-9-]{0,35})$")
_DEVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,35}$")
_API_KEY_RE = re.compile(r"[!-~]+")
MAX_LINE_BYTES = 1 << 20
"""A stored uplink is a few KiB; a longer line is not one."""


class BackfillError(SmartplaceError):
    """The Storage Integration could not be read."""


@dataclass
class BackfillResult:
    fetched: int = 0
    """Lines of the stream read from TTS: each a stored uplink, or skipped."""
    published: int = 0
    """Of those, published to the broker for ingest (duplicates are refused there)."""
    skipped: int = 0
    """Lines that were not an uplink of the application (other message types, other applications)."""


_EVENT_STREAM_OTHER = (b":", b"event:", b"id:", b"retry:")
"""Event-stream lines that carry no data (WHATWG HTML, server-sent events, 9.2.6)."""


def stored_uplinks(
    server: str,
    application: str,
    api_key: str,
    since: datetime,
    client: httpx.Client | None = None,
    timeout_s: float = 60.0,
) -> Iterator[dict[str, Any] | None]:
    """Each stored ApplicationUp of the application received after ``since``, oldest first;
    None for a line of the stream that holds none."""
    match = _APPLICATION_RE.fullmatch(application)
    if match is None:
        raise BackfillError(f"application {application!r}: give it as application-id@tenant-id")
    url = f"{server.rstrip('/')}/api/v3/as/applications/{match[1]}/packages/storage/uplink_message"
    params = {"after": since.isoformat().replace("+00:00", "Z"), "order": "received_at"}
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
    own = client is None
    http = client or httpx.Client(timeout=timeout_s)
    try:
        with http.stream("GET", url, params=params, headers=headers) as response:
            if response.status_code != 200:
                # repr: what a hostile server says must not drive the operator's terminal
                body = response.read()[:300].decode("utf-8", "replace")
                raise BackfillError(f"{url}: HTTP {response.status_code}: {body!r}")
            for line in _bounded_lines(response.iter_bytes(), url):
                text = line.strip()
                if text.startswith(b"data:"):  # an event-stream frame carries the same object
                    text = text[5:].strip()
                elif text.startswith(_EVENT_STREAM_OTHER):
                    continue  # a comment (keep-alive), or an event name, id or retry
                if not text:
                    continue
                try:
                    item = orjson.loads(text)
                except orjson.JSONDecodeError:
                    yield None  # one unreadable line is counted as skipped; the rest still fill
                    continue
                if isinstance(item, dict) and "error" in item:
                    ended = str(item["error"])[:300]
                    raise BackfillError(f"{url}: the stream ended with {ended!r}")
                # a line that is no stored uplink is still one the backfill counts (as skipped)
                result = item.get("result") if isinstance(item, dict) else None
                yield result if isinstance(result, dict) else None
    except httpx.HTTPError as exc:
        raise BackfillError(f"{url}: {exc}") from None
    finally:
        if own:
            http.close()


def _bounded_lines(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    """The stream's lines, each at most MAX_LINE_BYTES: httpx's own iter_lines keeps
    reading a line without end, so a hostile server could fill memory with one."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        *lines, rest = buffer.split(b"\n")
        for line in lines:
            if len(line) > MAX_LINE_BYTES:
                break
            yield bytes(line)
        else:
            if len(rest) <= MAX_LINE_BYTES:
                buffer = rest
                continue
        raise BackfillError(
            f"{url}: a line of more than {MAX_LINE_BYTES} bytes is no stored uplink"
        )
    if buffer:
        yield bytes(buffer)


def backfill(
    settings: Settings,
    server: str,
    application: str,
    api_key_file: Path,
    since: datetime,
    client: httpx.Client | None = None,
) -> BackfillResult:
    """Fetch the application's stored uplinks since ``since`` and publish them for ingest."""
    try:
        api_key = api_key_file.read_text().strip()
    except OSError as exc:
        raise BackfillError(f"API key file {api_key_file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BackfillError(f"API key file {api_key_file}: {NOT_UTF8}") from None
    # it goes into a header: non-ASCII cannot be encoded there, and a newline would end it
    if not _API_KEY_RE.fullmatch(api_key):
        raise BackfillError(
            f"API key file {api_key_file}: expected one key, on one line, of ASCII letters and signs"
        )
    result = BackfillResult()
    app_id = application.split("@", 1)[0]
    with gateway_publisher(settings.mqtt, "backfill") as publisher:
        for up in stored_uplinks(server, application, api_key, since, client):
            result.fetched += 1
            if up is None:
                result.skipped += 1
                continue
            ids = up.get("end_device_ids")
            device = ids.get("device_id") if isinstance(ids, dict) else None
            apps = ids.get("application_ids") if isinstance(ids, dict) else None
            owner = apps.get("application_id") if isinstance(apps, dict) else app_id
            if (
                not isinstance(device, str)
                or not _DEVICE_RE.fullmatch(device)
                or owner != app_id
                or "uplink_message" not in up
            ):
                result.skipped += 1
                continue
            publisher.publish(f"v3/{application}/devices/{device}/up", orjson.dumps(up))
            result.published += 1
        if not publisher.flush(60):
            raise BackfillError("the broker did not acknowledge every backfilled uplink")
    return result
