"""smartplace's own JSON: one reading object, or an array of them (a device flushing its buffer).

On air quality topics, Sensor.Community's JSON (push or API record) is
recognised by its ``sensordatavalues`` and read by its own adapter.

Topic ``{prefix}/{kind}/{device_id}/reading`` for readings and
``{prefix}/{kind}/{device_id}/status`` for device status.
"""

from __future__ import annotations

from typing import Any

from smartplace.schemas.candidate import Candidate, Decoded, Refusal, source_text
from smartplace.schemas.reading import Reading
from smartplace.schemas.reasons import RejectReason
from smartplace.schemas.sensorcommunity import is_sensorcommunity, sensorcommunity_candidates


def native_candidates(
    document: Any, payload: bytes, model: type[Reading], kind: str, max_readings: int
) -> Decoded:
    if isinstance(document, dict):
        return _one(document, payload, model, kind, "")
    if not isinstance(document, list) or not document:
        return [
            Refusal(
                RejectReason.WRONG_SHAPE, "payload must be an object or a non-empty array", payload
            )
        ]
    if len(document) > max_readings:
        return [
            Refusal(
                RejectReason.BATCH_TOO_LONG,
                f"{len(document)} readings, limit {max_readings}",
                payload,
            )
        ]
    decoded: Decoded = []
    for index, item in enumerate(document):
        decoded.extend(native_item(item, index, model, kind))
    return decoded


def native_item(item: Any, index: int, model: type[Reading], kind: str) -> Decoded:
    """Item ``index`` of a native array."""
    if isinstance(item, dict):
        # An array item's text is made again only if it is rejected (see Candidate.source).
        return _one(item, None, model, kind, f"[{index}]")
    return [
        Refusal(
            RejectReason.WRONG_SHAPE,
            "each reading must be a JSON object",
            source_text(item),
            f"[{index}]",
        )
    ]


def _one(
    item: dict[str, Any], source: bytes | None, model: type[Reading], kind: str, path: str
) -> Decoded:
    if kind == "air_quality" and is_sensorcommunity(item):
        return sensorcommunity_candidates(item, source or source_text(item), path)
    return [Candidate(model, kind, item, source, path=path)]
