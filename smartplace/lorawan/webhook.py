"""A receiver for The Things Stack's webhook integration: uplinks over HTTP, kept safe first.

TTS POSTs each uplink (an ApplicationUp, the same JSON as its MQTT
integration's) to the webhook's URL with the headers configured on the
webhook; here one of them carries a shared secret, compared in constant time
(``hmac.compare_digest``). The uplink is published to the project's broker at
QoS 1 on the topic the MQTT integration uses, and the receiver answers 2xx
only once the broker has acknowledged it (PUBACK): from then on ingest's
persistent session holds it, whether ingest is running or not. Without the
broker's acknowledgement it answers 503, and TTS, which tries a webhook once
unless retries are bought, has been told the uplink was not taken. So the
receiver runs wherever the broker runs, and its answer is never a lie.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from smartplace.errors import SmartplaceError
from smartplace.publisher import Publisher

SECRET_HEADER = "X-Smartplace-Webhook-Secret"  # noqa: S105 (a header name, not a secret)
"""The header TTS is configured to send the shared secret in (webhook 'Additional headers')."""
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,35}$")


class WebhookConfigError(SmartplaceError):
    """The webhook receiver cannot start with what was given."""


def check_tenant(tenant: str) -> None:
    """The tenant goes into every topic the receiver publishes on: TTS's id rules only."""
    if not _ID_RE.fullmatch(tenant):
        raise WebhookConfigError(f"tenant {tenant!r}: lower-case letters, digits and dashes")


def webhook_app(
    publisher: Publisher,
    secret: str,
    tenant: str,
    max_payload_bytes: int,
    ack_timeout_s: float = 10.0,
) -> FastAPI:
    """The ASGI app: POST /tts/uplink."""
    if not secret:
        raise WebhookConfigError("a webhook needs a shared secret")
    check_tenant(tenant)
    expected = secret.encode()
    app = FastAPI(title="smartplace TTS webhook", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/tts/uplink")
    async def uplink(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return Response(status_code=401)
        body = await _capped_body(request, max_payload_bytes)
        if body is None:
            return Response(status_code=413)
        topic = _topic(body, tenant)
        if topic is None:
            return Response("not a TTS uplink", status_code=400)
        # waiting for the PUBACK blocks: on a worker thread, not the event loop
        if not await run_in_threadpool(publisher.publish_and_wait, topic, body, ack_timeout_s):
            return Response("the broker did not take it", status_code=503)
        return Response(status_code=204)

    return app


async def _capped_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be longer than ``limit``: it is never
    held whole past the limit (a declared length is refused before anything is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _topic(body: bytes, tenant: str) -> str | None:
    """v3/{application}@{tenant}/devices/{device}/up for an uplink, else None."""
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("uplink_message"), dict):
        return None
    ids = document.get("end_device_ids")
    if not isinstance(ids, dict):
        return None
    device = ids.get("device_id")
    apps = ids.get("application_ids")
    application = apps.get("application_id") if isinstance(apps, dict) else None
    if not (isinstance(device, str) and _ID_RE.fullmatch(device)):
        return None
    if not (isinstance(application, str) and _ID_RE.fullmatch(application)):
        return None
    return f"v3/{application}@{tenant}/devices/{device}/up"
