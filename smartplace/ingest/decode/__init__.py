"""Decode: raw messages in, validated readings as columns (and rejects with reasons) out.

``decode_messages`` (``messages``) routes each message by topic to its format,
takes native readings a model at a time through the ``screen``, validates the
rest with pydantic, and returns ``ReadingColumns`` per measurement (``columns``)
with times parsed a column at a time (``times``). ``QcFlag`` (``flags``) is the
bitmask every later stage adds to.
"""

from smartplace.ingest.decode.columns import FloatArray, IntArray, ReadingColumns
from smartplace.ingest.decode.failures import internal_error
from smartplace.ingest.decode.flags import QcFlag
from smartplace.ingest.decode.messages import DecodedBatch, DecodeLimits, decode_messages
from smartplace.ingest.decode.slots import DeviceSlots

__all__ = [
    "DecodeLimits",
    "DecodedBatch",
    "DeviceSlots",
    "FloatArray",
    "IntArray",
    "QcFlag",
    "ReadingColumns",
    "decode_messages",
    "internal_error",
]
