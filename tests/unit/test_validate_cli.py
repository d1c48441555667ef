"""smartplace validate: one payload, judged as ingest judges it, verdict as JSON."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import orjson
from typer.testing import CliRunner

from smartplace.cli import app

SAMPLES = Path(__file__).parents[1] / "fixtures" / "samples"
runner = CliRunner()


def validate(*args: str, stdin: bytes | None = None) -> tuple[int, dict[str, object]]:
    result = runner.invoke(app, ["validate", *args], input=stdin)
    return result.exit_code, orjson.loads(result.stdout) if result.stdout.startswith("{") else {
        "out": result.output
    }


def test_an_accepted_reading_exits_0_with_the_normalised_reading() -> None:
    code, out = validate(
        "--topic",
        "smartplace/air_quality/aq-0001/reading",
        "--received-at",
        "2026-11-24T10:00:05Z",
        "-",
        stdin=b'{"ts": 1795514400123, "pm25_ugm3": 7}',
    )
    assert code == 0
    assert out == {
        "topic": "smartplace/air_quality/aq-0001/reading",
        "verdict": "accepted",
        "readings": [
            {
                "measurement": "air_quality",
                "kind": "air_quality",
                "device_id": "aq-0001",
                "site": None,
                "time": "2026-11-24T10:00:00.123000000Z",
                "qc_flags": 0,
                "fields": {"pm25_ugm3": 7.0},
            }
        ],
        "rejects": [],
        "registry": f"no registry at {os.environ['SMARTPLACE_REGISTRY_FILE']}: devices not checked",
    }


def test_a_rejected_reading_exits_1_with_reason_field_and_message() -> None:
    code, out = validate(
        "--topic", "smartplace/bin/bin-0001/reading", "-", stdin=b'{"fill_pct": 130}'
    )
    assert code == 1
    assert out["verdict"] == "rejected"
    [reject] = out["rejects"]  # type: ignore[misc]
    assert reject["reason"] == "out_of_range"
    assert reject["field"] == "fill_pct"
    assert reject["message"] == "fill_pct: Input should be less than or equal to 100"


def test_a_profile_and_a_bins_depth_decode_an_unregistered_lorawan_device() -> None:
    uplink = {
        "end_device_ids": {"device_id": "bin-0042"},
        "received_at": "2026-11-24T10:00:00.5Z",
        "uplink_message": {
            "f_cnt": 7,
            "frm_payload": base64.b64encode(
                bytes.fromhex("0175500382F401")
            ).decode(),  # 80 %, 500 mm
            "rx_metadata": [{"rssi": -101, "snr": 2.5}],
        },
    }
    payload = orjson.dumps(uplink)
    code, out = validate(
        "--topic",
        "v3/bins@ttn/devices/bin-0042/up",
        "--profile",
        "milesight-em310-udl",
        "--param",
        "empty_distance_mm=1500",
        "--param",
        "full_distance_mm=500",
        "--received-at",
        "2026-11-24T10:00:01Z",
        "-",
        stdin=payload,
    )
    assert code == 0, out
    readings = {r["measurement"]: r["fields"] for r in out["readings"]}  # type: ignore[union-attr,index]
    assert readings == {
        "device_status": {"battery_pct": 80.0, "rssi_dbm": -101.0, "snr_db": 2.5},
        "bin": {"fill_pct": 100.0, "distance_mm": 500.0},  # at the full mark: (1500 - 500) / 1000
    }


def test_samples_can_be_judged_as_of_when_they_were_sent(tmp_path: Path) -> None:
    code, out = validate(
        "--topic",
        "smartplace/air_quality/sc-1/reading",
        "--received-at",
        "2019-04-22T19:49:00Z",
        str(SAMPLES / "sensorcommunity_api_v1_reading_sds011.json"),
    )
    assert code == 0
    assert out["readings"][0]["time"] == "2019-04-22T19:48:54.000000000Z"  # type: ignore[index]


def test_bad_arguments_are_one_line_errors() -> None:
    result = runner.invoke(app, ["validate", "--topic", "t", "--profile", "nope", "-"], input=b"{}")
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "no profile 'nope'; known: milesight-em310-udl, milesight-vs133" in str(result.exception)


def test_validate_looks_devices_up_in_the_local_registry(
    tmp_path: Path, monkeypatch: object
) -> None:
    from smartplace.config import Settings
    from smartplace.devices.model import DeviceRecord
    from smartplace.devices.provisioning import register
    from smartplace.devices.registry import Registry

    registry_file = tmp_path / "registry.db"
    with Registry(registry_file) as registry:
        register(
            Settings(),
            registry,
            [DeviceRecord(device_id="aq-0001", kind="air_quality", site="merseyway")],
        )
    monkeypatch.setenv("SMARTPLACE_REGISTRY_FILE", str(registry_file))  # type: ignore[attr-defined]
    body = b'{"pm25_ugm3": 7}'
    code, known = validate("--topic", "smartplace/air_quality/aq-0001/reading", "-", stdin=body)
    assert code == 0
    assert known["readings"][0]["site"] == "merseyway"  # type: ignore[index]
    code, unknown = validate("--topic", "smartplace/air_quality/aq-0002/reading", "-", stdin=body)
    assert code == 1
    assert unknown["rejects"][0]["reason"] == "unknown_device"  # type: ignore[index]
    assert unknown["registry"] == f"devices checked against {registry_file}"


DEEP = "[" * 300 + "]" * 300


def test_the_known_poison_messages_are_clean_rejects_not_tracebacks() -> None:
    cases = [
        ("senml", b'[{"bt":1e303,"n":"pm25","u":"ug/m3","v":5}]', "bad_timestamp"),
        ("reading", f"[{DEEP}]".encode(), "wrong_shape"),
        ("reading", f'[{{"pm25_ugm3":"x","zz":{DEEP}}}]'.encode(), "wrong_type"),
    ]
    for leaf, payload, reason in cases:
        code, out = validate(
            "--topic", f"smartplace/air_quality/aq-0001/{leaf}", "-", stdin=payload
        )
        assert code == 1, out
        assert out["verdict"] == "rejected"
        assert [r["reason"] for r in out["rejects"]] == [reason]  # type: ignore[index, union-attr]
