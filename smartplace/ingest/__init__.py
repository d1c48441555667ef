"""Ingest, in stages: receive -> decode -> check -> windows -> write (one package each).

No stage imports a later one (tests/unit/test_architecture.py). On top of them:
``pipeline`` runs decode to write over a micro-batch, ``writer_thread`` takes
batches from the spool through the pipeline into InfluxDB, ``recovery`` saves
and restores the pipeline's state, ``service`` joins the broker, the spool and
the writer thread, and ``health`` serves probes and metrics.
"""

from smartplace.ingest.decode.messages import DecodeLimits, decode_messages
from smartplace.ingest.pipeline import Pipeline, PipelineOutput
from smartplace.ingest.receive.message import RawMessage
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
