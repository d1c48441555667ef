"""Why a reading was refused: stable reason codes an engineer can look up, and a Reject.

Codes are part of the public interface (dashboards and alerts group by them):
add new ones, never rename or reuse one.
"""

from __future__ import annotations

import ast
import inspect
import itertools
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

EXCERPT_BYTES = 256


class RejectReason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    """The payload is not JSON (or not UTF-8)."""
    PAYLOAD_TOO_LARGE = "payload_too_large"
    """The payload is over ingest.max_payload_bytes."""
    WRONG_SHAPE = "wrong_shape"
    """JSON, but not the shape its format needs (an object or array of objects; a SenML pack; a TTS uplink)."""
    BATCH_TOO_LONG = "batch_too_long"
    """A payload with more readings than ingest.max_readings_per_payload (an array, a SenML pack), or a Sensor.Community record with more values than any firmware sends."""
    UNKNOWN_TOPIC = "unknown_topic"
    """The topic follows none of smartplace's topic schemes."""
    UNKNOWN_KIND = "unknown_kind"
    """The topic names a sensor kind smartplace does not know."""
    BAD_DEVICE_ID = "bad_device_id"
    """A device id that does not match the device id pattern."""
    TOPIC_DEVICE_MISMATCH = "topic_device_mismatch"
    """The payload names a different device than its topic."""
    MISSING_FIELD = "missing_field"
    """A required field is absent."""
    WRONG_TYPE = "wrong_type"
    """A field has the wrong JSON type (text for a number, say)."""
    NOT_FINITE = "not_finite"
    """A number is NaN or infinite."""
    OUT_OF_RANGE = "out_of_range"
    """A value is outside its physical range."""
    NO_MEASUREMENTS = "no_measurements"
    """A reading with none of its kind's required measurements."""
    BAD_TIMESTAMP = "bad_timestamp"
    """A timestamp that is neither ISO 8601 nor epoch seconds/milliseconds."""
    FUTURE_TIMESTAMP = "future_timestamp"
    """Timestamped further ahead of its arrival than ingest.max_future_s."""
    STALE_TIMESTAMP = "stale_timestamp"
    """Older at arrival than ingest.max_age_s."""
    UNKNOWN_MEASUREMENT = "unknown_measurement"
    """A SenML record or decoded field that maps onto no field of any kind."""
    UNKNOWN_PROFILE = "unknown_profile"
    """A LoRaWAN uplink from a device whose payload profile smartplace cannot tell."""
    UNDECODABLE_PAYLOAD = "undecodable_payload"
    """Binary frm_payload bytes that do not follow the device profile's channel table."""
    DUPLICATE_FRAME = "duplicate_frame"
    """A LoRaWAN frame seen before (same device, session and frame counter)."""
    OUT_OF_ORDER_FRAME = "out_of_order_frame"
    """A cumulative-counter frame older than the last one from the same device, or less than a second after it."""
    PAYLOAD_MISMATCH = "payload_mismatch"
    """A LoRaWAN uplink whose network-server decoded payload disagrees with its raw bytes."""
    REFUSED_BY_DATABASE = "refused_by_database"
    """InfluxDB refused the point (a field whose type conflicts with what it stores, say)."""
    UNKNOWN_DEVICE = "unknown_device"
    """A device the registry does not know (checked once the registry exists)."""
    RETIRED_DEVICE = "retired_device"
    """A device the registry has retired."""
    INVALID = "invalid"
    """Any other validation failure; the detail says which."""
    INTERNAL_ERROR = "internal_error"
    """A message that made ingest itself fail; the detail names the exception and where it was raised (a bug to report)."""


@dataclass(frozen=True, slots=True)
class Reject:
    reason: RejectReason
    detail: str
    topic: str
    device_id: str | None
    payload_excerpt: str
    received_ns: int
    field_path: str = ""
    """Where in the payload the problem is, e.g. 'uplink_message.decoded_payload.distance'."""


_ERROR_TYPE_REASONS = {
    "missing": RejectReason.MISSING_FIELD,
    "finite_number": RejectReason.NOT_FINITE,
    "greater_than": RejectReason.OUT_OF_RANGE,
    "greater_than_equal": RejectReason.OUT_OF_RANGE,
    "less_than": RejectReason.OUT_OF_RANGE,
    "less_than_equal": RejectReason.OUT_OF_RANGE,
    "string_pattern_mismatch": RejectReason.BAD_DEVICE_ID,
    "model_type": RejectReason.WRONG_SHAPE,
    "model_attributes_type": RejectReason.WRONG_SHAPE,
}


def reason_for(error: ValidationError) -> tuple[RejectReason, str, str]:
    """The reason code, a one-line detail and the field path of a model's first validation error."""
    first = error.errors(include_url=False)[0]
    kind = first["type"]
    location = ".".join(str(part) for part in first["loc"])
    detail = f"{location or 'reading'}: {first['msg']}"
    if kind in RejectReason.__members__.values():
        return RejectReason(kind), detail, location
    if kind == "string_pattern_mismatch" and location != "device_id":
        return RejectReason.INVALID, detail, location
    if kind in _ERROR_TYPE_REASONS:
        return _ERROR_TYPE_REASONS[kind], detail, location
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return RejectReason.WRONG_TYPE, detail, location
    return RejectReason.INVALID, detail, location


def excerpt(payload: bytes) -> str:
    """The start of a payload as text, for an engineer to recognise it; never the whole thing."""
    return payload[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def reason_descriptions() -> dict[RejectReason, str]:
    """Each reason's one-line meaning, read from the docstrings under its members above,
    so the README's table and the code cannot disagree."""
    tree = ast.parse(inspect.getsource(RejectReason))
    body = tree.body[0].body  # type: ignore[attr-defined]
    descriptions: dict[RejectReason, str] = {}
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.Assign)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
        ):
            descriptions[RejectReason(statement.value.value)] = str(following.value.value)  # type: ignore[attr-defined]
    return descriptions


def reasons_markdown() -> str:
    lines = ["| reason | meaning |", "|---|---|"]
    lines += [f"| `{reason.value}` | {text} |" for reason, text in reason_descriptions().items()]
    return "\n".join(lines)
