"""Decode-and-validate cost per reading, for each input format.

Prints microseconds per reading (best of several runs: this machine is shared
and noisy) and, for native arrays, the batch path (one pydantic list
validation) beside validating each object on its own, in the same process.

    .venv/bin/python -m bench.decode_formats [--readings 20000]
"""

from __future__ import annotations

import argparse
import base64
import struct
import time
from collections.abc import Callable

import orjson
from pydantic import TypeAdapter

from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.receive.message import RawMessage
from smartplace.schemas import AirQualityReading
from smartplace.schemas.ttn import TtnState

NOW_NS = 1_795_514_400 * 10**9
LIMITS = DecodeLimits("smartplace", 1 << 20, 1000, 300 * 10**9, 7 * 86400 * 10**9)


def best_of(runs: int, work: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(runs):
        started = time.perf_counter()
        count = work()
        best = min(best, time.perf_counter() - started)
    return best, count


def reading(i: int) -> dict[str, object]:
    return {
        "ts": 1_795_514_000 + i % 300,
        "pm25_ugm3": 5 + i % 40 / 4,
        "pm10_ugm3": 9.5,
        "no2_ugm3": 20.0 + i % 7,
        "humidity_pct": 71.0,
    }


def messages(fmt: str, n: int) -> list[RawMessage]:
    out = []
    if fmt == "native, one reading per message":
        for i in range(n):
            out.append(
                RawMessage(
                    f"smartplace/air_quality/aq-{i % 1000:04d}/reading",
                    orjson.dumps(reading(i)),
                    NOW_NS,
                )
            )
    elif fmt == "native, arrays of 100":
        for start in range(0, n, 100):
            body = orjson.dumps([reading(i) for i in range(start, start + 100)])
            out.append(
                RawMessage(
                    f"smartplace/air_quality/aq-{start // 100 % 1000:04d}/reading", body, NOW_NS
                )
            )
    elif fmt == "SenML, 4 records per reading":
        for i in range(n):
            pack = [
                {
                    "bn": "urn:dev:x:",
                    "bt": 1_795_514_000 + i % 300,
                    "n": "pm25",
                    "u": "ug/m3",
                    "v": 7.5,
                },
                {"n": "pm10", "u": "ug/m3", "v": 9.5},
                {"n": "no2", "u": "ug/m3", "v": 20.0},
                {"u": "%RH", "v": 71.0},
            ]
            out.append(
                RawMessage(
                    f"smartplace/air_quality/aq-{i % 1000:04d}/senml", orjson.dumps(pack), NOW_NS
                )
            )
    elif fmt == "TTN, EM310 frm_payload (bin + status)":
        for i in range(n):
            frame = bytes.fromhex("01755C") + struct.pack("<BBH", 0x03, 0x82, 300 + i % 700)
            up = {
                "end_device_ids": {"device_id": f"bin-{i % 1000:04d}"},
                "received_at": "2026-11-24T09:55:00.123456789Z",
                "uplink_message": {
                    "f_cnt": i,
                    "session_key_id": "s",
                    "frm_payload": base64.b64encode(frame).decode(),
                    "version_ids": {"model_id": "em310-udl"},
                    "rx_metadata": [{"rssi": -99, "snr": 4.0}, {"rssi": -105, "snr": 1.0}],
                },
            }
            out.append(
                RawMessage(f"v3/bins@ttn/devices/bin-{i % 1000:04d}/up", orjson.dumps(up), NOW_NS)
            )
    elif fmt == "Sensor.Community push":
        for i in range(n):
            push = {
                "esp8266id": str(i),
                "sensordatavalues": [
                    {"value_type": "SDS_P1", "value": "9.50"},
                    {"value_type": "SDS_P2", "value": f"{5 + i % 40 / 4:.2f}"},
                    {"value_type": "temperature", "value": "11.20"},
                    {"value_type": "humidity", "value": "71.00"},
                    {"value_type": "signal", "value": "-80"},
                ],
            }
            out.append(
                RawMessage(
                    f"smartplace/air_quality/sc-{i % 1000:04d}/reading", orjson.dumps(push), NOW_NS
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readings", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    n = args.readings
    print(f"decode + validate, {n:,} readings per format, best of {args.runs} runs, one core")
    print(f"{'format':42} {'us/reading':>11} {'readings/s':>12}")
    for fmt in (
        "native, one reading per message",
        "native, arrays of 100",
        "SenML, 4 records per reading",
        "TTN, EM310 frm_payload (bin + status)",
        "Sensor.Community push",
    ):
        batch = messages(fmt, n)

        def work(batch: list[RawMessage] = batch) -> int:
            decoded = decode_messages(batch, LIMITS, TtnState())
            assert not decoded.rejects, decoded.rejects[:1]
            return decoded.accepted

        seconds, accepted = best_of(args.runs, work)
        print(f"{fmt:42} {seconds / accepted * 1e6:11.2f} {accepted / seconds:12,.0f}")

    documents = [reading(i) for i in range(n)]
    per_object, _ = best_of(
        args.runs, lambda: len([AirQualityReading.model_validate(d) for d in documents])
    )
    adapter = TypeAdapter(list[AirQualityReading])
    as_list, _ = best_of(args.runs, lambda: len(adapter.validate_python(documents)))
    print()
    print("pydantic alone, same readings:")
    print(f"{'  model_validate per object':42} {per_object / n * 1e6:11.2f}")
    print(
        f"{'  one list validation (batch path)':42} {as_list / n * 1e6:11.2f}   ratio {per_object / as_list:.2f}x"
    )


if __name__ == "__main__":
    main()
