"""device_health: a point for every registered device, whether it speaks or not."""

from __future__ import annotations

import orjson
import pytest

from smartplace.devices.model import DeviceRecord
from smartplace.ingest.device_health import DeviceHealth, status_fields
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.shard import shard_of

S = 1_000_000_000
DEVICES = {
    "aq-0001": DeviceRecord(device_id="aq-0001", kind="air_quality", site="merseyway"),
    "bin-0001": DeviceRecord(device_id="bin-0001", kind="bin", status="retired"),
}


def health(start_s: int = 1000) -> DeviceHealth:
    tracker = DeviceHealth("sp", 60.0)
    tracker.started_ns = start_s * S
    return tracker


def test_a_device_that_never_spoke_is_silent_since_the_worker_started() -> None:
    assert health().lines(DEVICES, 1090 * S) == [
        "device_health,device_id=aq-0001,kind=air_quality,site=merseyway,status=active"
        ' silent_s=90.0,heard=false,registry_status="active" 1090000000000',
        "device_health,device_id=bin-0001,kind=bin,status=retired"  # no site: no tag
        ' silent_s=90.0,heard=false,registry_status="retired" 1090000000000',
    ]


def test_last_message_battery_and_radio_come_from_what_it_sent() -> None:
    tracker = health()
    status = orjson.dumps(
        {"battery_pct": 81.5, "rssi_dbm": -97, "snr_db": 7.25, "firmware": "2.1.0"}
    )
    tracker.heard(
        [
            RawMessage("sp/air_quality/aq-0001/reading", b"{}", 1100 * S),
            RawMessage("sp/air_quality/aq-0001/status", status, 1150 * S),
        ]
    )
    (line, _) = tracker.lines(DEVICES, 1200 * S)
    fields = line.split(" ")[1]
    assert (
        fields
        == 'silent_s=50.0,heard=true,registry_status="active",battery_pct=81.5,rssi_dbm=-97.0,'
        'snr_db=7.25,firmware="2.1.0"'
    )
    tracker.heard([RawMessage("sp/air_quality/aq-0001/reading", b"{}", 1300 * S)])
    (line, _) = tracker.lines(DEVICES, 1330 * S)
    assert line.split(" ")[1].startswith(
        'silent_s=30.0,heard=true,registry_status="active",battery_pct=81.5,'
    )  # kept


def test_a_ttn_uplink_gives_the_best_gateway() -> None:
    uplink = {
        "end_device_ids": {"device_id": "aq-0001"},
        "uplink_message": {
            "decoded_payload": {"battery_pct": 40},
            "rx_metadata": [{"rssi": -110, "snr": -3.5}, {"channel_rssi": -101, "snr": 2.0}, {}],
        },
    }
    assert status_fields(orjson.dumps(uplink), ttn=True) == {
        "battery_pct": 40.0,
        "rssi_dbm": -101.0,
        "snr_db": 2.0,
    }


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'"text"',
        b'{"battery_pct": 101, "rssi_dbm": 5, "snr_db": true, "firmware": "x\\u0000y"}',
        b'{"battery_pct": "81", "rssi_dbm": null, "firmware": ' + b'"' + b"9" * 41 + b'"}',
        b'{"battery_pct": 1e999}',
    ],
)
def test_hostile_status_payloads_give_nothing(payload: bytes) -> None:
    assert status_fields(payload, ttn=False) == {}
    assert status_fields(payload, ttn=True) == {}
    assert status_fields(payload, ttn=False, chirpstack=True) == {}


@pytest.mark.parametrize("radio", [5, True, 1.5, "gw", {"rssi": -90}, None])
def test_gateways_that_are_not_a_list_give_no_radio_fields(radio: object) -> None:
    """A ChirpStack event with rxInfo 5 raised TypeError here, and the receive loop's health
    write took ingest down with it (a TTS rx_metadata of 5 too)."""
    event = {"rxInfo": radio, "object": {"battery_pct": 50}}
    uplink = {"uplink_message": {"rx_metadata": radio, "decoded_payload": {"battery_pct": 50}}}
    assert status_fields(orjson.dumps(event), ttn=False, chirpstack=True) == {"battery_pct": 50.0}
    assert status_fields(orjson.dumps(uplink), ttn=True) == {"battery_pct": 50.0}


def test_a_tts_uplink_is_not_read_as_a_chirpstack_event() -> None:
    event_shaped = {"rxInfo": [{"rssi": -40}], "object": {"battery_pct": 10}}
    assert status_fields(orjson.dumps(event_shaped), ttn=True) == {}


def test_topics_of_unregistered_devices_are_not_kept() -> None:
    tracker = health()
    tracker.heard(
        [
            RawMessage("sp/air_quality/ghost-1/reading", b"{}", 1100 * S),
            RawMessage("elsewhere/x", b"{}", 1100 * S),
            RawMessage("sp/registry/aq-0001", b"{}", 1100 * S),
        ]
    )
    lines = tracker.lines(DEVICES, 1200 * S)
    assert [line.split(",")[1] for line in lines] == ["device_id=aq-0001", "device_id=bin-0001"]
    assert all("heard=false" in line for line in lines)
    assert tracker._last_ns == {}


def test_each_worker_writes_its_own_devices_only() -> None:
    many = {
        f"aq-{n:04d}": DeviceRecord(device_id=f"aq-{n:04d}", kind="air_quality") for n in range(20)
    }
    written = []
    for index in range(2):
        tracker = DeviceHealth("sp", 60.0, workers=2, worker_index=index)
        written.append(
            {line.split(",")[1].removeprefix("device_id=") for line in tracker.lines(many, 0)}
        )
    assert written[0] | written[1] == set(many)
    assert not written[0] & written[1]
    assert all(shard_of("sp", f"sp/air_quality/{d}/reading", 2) == 1 for d in written[1])


def test_a_chirpstack_device_is_heard_by_the_dev_eui_its_record_gives() -> None:
    """A ChirpStack topic names a DevEUI, not a device id: such a device was never heard, and
    its silence alert fired however often it spoke."""
    devices = {
        "bin-cs1": DeviceRecord(
            device_id="bin-cs1", kind="bin", metadata={"dev_eui": "24e1247aa000100a"}
        ),
    }
    event = {
        "deviceInfo": {"devEui": "24E1247AA000100A", "deviceName": "Library bin"},
        "rxInfo": [{"rssi": -104, "snr": 1.5}, {"rssi": -97, "snr": -2.0}],
    }
    tracker = health()
    topic = "application/app-1/device/24E1247AA000100A/event/up"
    tracker.heard([RawMessage(topic, orjson.dumps(event), 1180 * S)])
    [line] = tracker.lines(devices, 1200 * S)
    assert line.split(" ")[1] == (
        'silent_s=20.0,heard=true,registry_status="active",rssi_dbm=-97.0,snr_db=1.5'
    )


def test_a_failure_in_health_skips_its_interval_and_never_reaches_the_receive_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """write_if_due runs on the receive loop: whatever breaks in it must not stop ingest."""

    def broken(*_args: object, **_kwargs: object) -> dict[str, object]:
        raise TypeError("a status nobody foresaw")

    monkeypatch.setattr("smartplace.ingest.device_health.status_fields", broken)
    tracker = health()
    tracker._silent_since, tracker._next_write = {}, 0.0
    tracker.heard([RawMessage("sp/air_quality/aq-0001/status", b"{}", 1100 * S)])
    tracker.write_if_due(None, DEVICES, "raw")  # type: ignore[arg-type]  # never reached
    assert (tracker._arrived, tracker._payloads) == ({}, {})
