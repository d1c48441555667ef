"""Sensor.Community (luftdaten.info, airrohr firmware) JSON on an air quality reading topic.

Two shapes, told apart by their keys: the firmware's push (``esp8266id``,
``software_version``, ``sensordatavalues``) and the public API's records
(``sensor``, ``location``, ``timestamp``, ``sensordatavalues``), one record
per physical sensor. Every value is text. The API files a PM sensor and its
temperature/humidity sensor as separate records: a record with no pollutant
is refused (no_measurements) rather than guessed into another's reading.
"""

from __future__ import annotations

from typing import Any

from smartplace.schemas.air_quality import AirQualityReading
from smartplace.schemas.candidate import Candidate, Decoded, Refusal
from smartplace.schemas.device_status import DeviceStatusReading
from smartplace.schemas.reasons import RejectReason

# value_type -> (our field, factor). P1 is PM10 and P2 is PM2.5 (not the other way round).
VALUE_TYPES: dict[str, tuple[str, float]] = {
    "P0": ("pm1_ugm3", 1.0),
    "P1": ("pm10_ugm3", 1.0),
    "P2": ("pm25_ugm3", 1.0),
    "temperature": ("temperature_c", 1.0),
    "humidity": ("humidity_pct", 1.0),
    "pressure": ("pressure_hpa", 0.01),  # BME280/BMP report pascals
    "signal": ("rssi_dbm", 1.0),
}
_PREFIXES = ("SDS_", "PMS_", "HPM_", "SPS30_", "BME280_", "BMP_", "BMP280_", "DHT22_", "SHT3X_")
MAX_VALUES = 64
"""More sensordatavalues than any firmware sends (it sends under 20): refused whole, so one
record cannot become thousands of rejects."""
# Firmware diagnostics: counted samples and loop timings, not measurements.
_DIAGNOSTICS = {"samples", "min_micro", "max_micro", "interval"}


def is_sensorcommunity(document: Any) -> bool:
    return isinstance(document, dict) and "sensordatavalues" in document


def sensorcommunity_candidates(document: dict[str, Any], source: bytes, path: str) -> Decoded:
    values = document.get("sensordatavalues")
    if not isinstance(values, list):
        return [Refusal(RejectReason.WRONG_SHAPE, "sensordatavalues must be a list", source, path)]
    if len(values) > MAX_VALUES:
        detail = f"{len(values)} sensordatavalues, limit {MAX_VALUES}"
        return [Refusal(RejectReason.BATCH_TOO_LONG, detail, source, path)]
    reading: dict[str, Any] = {}
    status: dict[str, Any] = {}
    decoded: Decoded = []
    for index, entry in enumerate(values):
        entry_path = f"{path}.sensordatavalues[{index}]" if path else f"sensordatavalues[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("value_type"), str):
            decoded.append(
                Refusal(
                    RejectReason.WRONG_SHAPE, "each entry needs a value_type", source, entry_path
                )
            )
            continue
        value_type = _unprefixed(entry["value_type"])
        if value_type in _DIAGNOSTICS:
            continue
        if value_type not in VALUE_TYPES:
            detail = f"Sensor.Community value_type {entry['value_type']!r} maps onto no field"
            decoded.append(Refusal(RejectReason.UNKNOWN_MEASUREMENT, detail, source, entry_path))
            continue
        field, factor = VALUE_TYPES[value_type]
        try:
            number = float(entry.get("value"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            detail = f"{entry['value_type']} value {str(entry.get('value'))[:20]!r} is not a number"
            decoded.append(Refusal(RejectReason.WRONG_TYPE, detail, source, f"{entry_path}.value"))
            continue
        target = status if field in DeviceStatusReading.model_fields else reading
        target[field] = number * factor
    timestamp = document.get("timestamp")
    if timestamp is not None:
        reading["ts"] = status["ts"] = timestamp
    if set(reading) - {"ts"}:
        decoded.insert(0, Candidate(AirQualityReading, "air_quality", reading, source, path))
    if set(status) - {"ts"}:
        decoded.insert(0, Candidate(DeviceStatusReading, "air_quality", status, source, path))
    if not decoded:
        decoded.append(
            Refusal(RejectReason.NO_MEASUREMENTS, "no sensordatavalues to store", source, path)
        )
    return decoded


def _unprefixed(value_type: str) -> str:
    for prefix in _PREFIXES:
        if value_type.startswith(prefix):
            return value_type[len(prefix) :]
    return value_type
