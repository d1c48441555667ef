"""A message that makes ingest itself fail, turned into a reject of that message alone.

Every input is meant to be refused with a reason of its own; a message that
makes a stage raise anyway is a bug in ingest, not in the device. Left to
propagate, it would stop the writer, stay in the spool and stop it again
at every restart, so the stage that catches it stores the message as an
``internal_error`` reject naming the exception and where it was raised,
logs the traceback for the bug report, and goes on with the rest.
"""

from __future__ import annotations

import logging

from smartplace.schemas import DEVICE_ID_RE
from smartplace.schemas.reasons import Reject, RejectReason, excerpt
from smartplace.schemas.topics import parse_topic

log = logging.getLogger(__name__)

DETAIL_CHARS = 200


def raised_at(exc: BaseException) -> str:
    """Where ``exc`` was raised, as module:function:line (the innermost frame)."""
    tb = exc.__traceback__
    if tb is None:
        return "unknown"
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    return f"{frame.f_globals.get('__name__', '?')}:{frame.f_code.co_name}:{tb.tb_lineno}"


def describe(exc: BaseException) -> str:
    """The exception's type, place and message, one line, short enough for a reject."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__} at {raised_at(exc)}: {message}"[:DETAIL_CHARS]


def internal_error(
    topic: str, payload: bytes, received_ns: int, prefix: str, exc: BaseException
) -> Reject:
    """The reject that stands for a message which made a stage raise ``exc``."""
    log.error(
        "a message made ingest fail; stored as an internal_error reject topic=%r",
        topic[:200],
        exc_info=exc,
    )
    return Reject(
        RejectReason.INTERNAL_ERROR,
        describe(exc),
        topic,
        _device_of(prefix, topic),
        excerpt(payload),
        received_ns,
    )


def _device_of(prefix: str, topic: str) -> str | None:
    try:
        parsed = parse_topic(prefix, topic)
    except Exception:  # the topic may be what broke the stage
        return None
    if parsed is None or not DEVICE_ID_RE.fullmatch(parsed.device_id):
        return None
    return parsed.device_id
