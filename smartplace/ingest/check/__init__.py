"""Check: quality flags on every reading (spikes, flatlines, duplicates, order, humidity).

A flag never removes a raw value; the windows leave flagged values out, field by field.
"""

from smartplace.ingest.check.quality import QualityChecker, QualityReport, count_flags

__all__ = ["QualityChecker", "QualityReport", "count_flags"]
