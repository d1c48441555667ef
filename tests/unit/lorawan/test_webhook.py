"""The webhook receiver's answers: 2xx only for an uplink the broker acknowledged."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartplace.lorawan.cli import app as lorawan_app
from smartplace.lorawan.webhook import SECRET_HEADER, WebhookConfigError, _capped_body, webhook_app


class Broker:
    """Stands in for the Publisher: records what was published, acknowledges or not."""

    def __init__(self, acknowledges: bool) -> None:
        self.acknowledges = acknowledges
        self.published: list[tuple[str, bytes]] = []

    def publish_and_wait(self, topic: str, payload: bytes, _timeout_s: float) -> bool:
        self.published.append((topic, payload))
        return self.acknowledges


UPLINK = orjson.dumps(
    {
        "end_device_ids": {"device_id": "bin-7", "application_ids": {"application_id": "bins"}},
        "uplink_message": {"f_cnt": 1},
    }
)


def client(broker: Any) -> TestClient:
    return TestClient(webhook_app(broker, "s3cret", "ttn", 65536))


def test_an_acknowledged_uplink_is_answered_204_on_its_mqtt_topic() -> None:
    broker = Broker(acknowledges=True)
    assert (
        client(broker)
        .post("/tts/uplink", content=UPLINK, headers={SECRET_HEADER: "s3cret"})
        .status_code
        == 204
    )
    assert broker.published == [("v3/bins@ttn/devices/bin-7/up", UPLINK)]


def test_an_uplink_the_broker_did_not_acknowledge_is_answered_503() -> None:
    broker = Broker(acknowledges=False)
    assert (
        client(broker)
        .post("/tts/uplink", content=UPLINK, headers={SECRET_HEADER: "s3cret"})
        .status_code
        == 503
    )


def test_a_hostile_body_is_refused_before_the_broker() -> None:
    broker = Broker(acknowledges=True)
    http = client(broker)
    bad_id = UPLINK.replace(b"bin-7", b"bin/7/#")
    assert (
        http.post("/tts/uplink", content=bad_id, headers={SECRET_HEADER: "s3cret"}).status_code
        == 400
    )
    assert (
        http.post(
            "/tts/uplink", content=b"x" * 65537, headers={SECRET_HEADER: "s3cret"}
        ).status_code
        == 413
    )
    assert (
        http.post("/tts/uplink", content=UPLINK, headers={SECRET_HEADER: "s3cre"}).status_code
        == 401
    )
    assert broker.published == []


@pytest.mark.parametrize(
    ("secret", "tenant", "message"),
    [
        ("\n", "ttn", r"secret file .*: empty"),
        ("s3cret", "BAD TENANT", r"tenant 'BAD TENANT': lower-case letters, digits and dashes"),
    ],
)
def test_a_webhook_that_cannot_start_says_why_before_it_reaches_for_the_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str, tenant: str, message: str
) -> None:
    # no broker listens here: the check must come first, and be one of ours (one line, no traceback)
    monkeypatch.setenv("SMARTPLACE_MQTT__PORT", "1")
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret)
    args = ["webhook", "--secret-file", str(secret_file), "--tenant", tenant]
    result = CliRunner().invoke(lorawan_app, args)
    assert isinstance(result.exception, WebhookConfigError)
    assert re.fullmatch(message, str(result.exception))


@pytest.mark.parametrize("declared", [False, True])
def test_a_long_body_is_refused_without_being_read_whole(declared: bool) -> None:
    """A 300 MiB body took the receiver from 116 to 418 MiB before its 413: the body was read
    whole, then measured. Now a declared length is refused unread, and a chunked body is
    read only until it passes the limit."""
    chunk, sent = b"x" * 65536, [0]

    async def receive() -> dict[str, object]:
        sent[0] += 1
        return {"type": "http.request", "body": chunk, "more_body": sent[0] < 4800}

    headers = [(b"content-length", str(4800 * len(chunk)).encode())] if declared else []
    scope = {"type": "http", "method": "POST", "path": "/tts/uplink", "headers": headers}
    assert asyncio.run(_capped_body(Request(scope, receive), 65536)) is None
    assert sent[0] == (0 if declared else 2)
