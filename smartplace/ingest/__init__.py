"""Ingest: subscriber -> decode -> quality -> downsample -> line protocol -> InfluxDB."""

from smartplace.ingest.decode import DecodeLimits, RawMessage, decode_messages
from smartplace.ingest.pipeline import Pipeline, PipelineOutput
from smartplace.ingest.service import IngestService
from smartplace.ingest.stats import IngestStats
from smartplace.schemas.reasons import Reject, RejectReason

__all__ = [
    "DecodeLimits",
    "IngestService",
    "IngestStats",
    "Pipeline",
    "PipelineOutput",
    "RawMessage",
    "Reject",
    "RejectReason",
    "decode_messages",
]
