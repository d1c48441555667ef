"""The webhook receiver's answers: 2xx only for an uplink the broker acknowledged."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient

from smartplace.lorawan.webhook import SECRET_HEADER, webhook_app


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
