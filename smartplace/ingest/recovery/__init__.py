"""Recovery: the pipeline's state saved apart from its settings, and rebuilt when it is lost.

``state`` is the versioned data format (no pickle); ``checkpoint`` saves it with
the committed spool offset; ``rebuild`` refills open windows from raw points in
InfluxDB when no saved state can be used, and ``ledger_resume`` takes the delivery
ledger's open hours back from their points.
"""

from smartplace.ingest.recovery.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from smartplace.ingest.recovery.ledger_resume import resume_ledger
from smartplace.ingest.recovery.rebuild import missing_windows, rebuild_windows
from smartplace.ingest.recovery.state import export_pipeline, restore_pipeline

__all__ = [
    "Checkpoint",
    "export_pipeline",
    "load_checkpoint",
    "missing_windows",
    "rebuild_windows",
    "restore_pipeline",
    "resume_ledger",
    "save_checkpoint",
]
