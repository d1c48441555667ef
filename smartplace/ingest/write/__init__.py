"""Write: readings, rejects and aggregates as line protocol, and a write that isolates refusals.

``points`` turns columns, rejects and registry updates into points;
``aggregates`` does the same for window aggregates; ``refusals`` writes a batch
so that a line InfluxDB refuses costs only itself.
"""

from smartplace.ingest.write.aggregates import window_lines
from smartplace.ingest.write.points import device_info_lines, raw_lines, reject_lines
from smartplace.ingest.write.refusals import write_isolating_refusals

__all__ = [
    "device_info_lines",
    "raw_lines",
    "reject_lines",
    "window_lines",
    "write_isolating_refusals",
]
