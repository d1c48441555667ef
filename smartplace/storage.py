"""Where smartplace keeps what it writes in InfluxDB: every measurement and field-suffix name,
in one place, for ingest, the dashboards, the feeds, trace and the demo.

Raw points and registry, health and pipeline series go to the raw retention policy
(``SMARTPLACE_INFLUX__RAW_RETENTION_POLICY``), window aggregates and the site index to
the agg one; their names come from the settings, and ``in_policies`` moves query text
written against the defaults onto the configured ones.
"""

from __future__ import annotations

import re

RAW_POLICY = "raw"
"""The raw retention policy's default name."""
AGG_POLICY = "agg"
"""The aggregate retention policy's default name."""

REJECTS = "ingest_rejects"
"""One point per reject, tagged by reason (raw)."""
DELIVERY_LEDGER = "delivery_ledger"
"""Per device and arrival hour: what became of its readings (raw)."""
LEDGER_MARKS = ("through_ns", "refused_through_ns")
"""Ledger fields saying how far a point has counted (``ingest/ledger.py``): not totals."""
DEVICE_INFO = "device_info"
"""Where each device stands and its registry status, one point per registry update (raw)."""
DEVICE_HEALTH = "device_health"
"""Every registered device's health, written whether it speaks or not (raw)."""
INGEST_STATS = "ingest_stats"
"""Each ingest worker's counters, every stats interval (raw)."""
SITE_DAQI = "daqi_1h"
"""The Daily Air Quality Index per site and hour (agg)."""

AGGREGATE_STATS = ("mean", "min", "max", "count", "p95")
"""The suffixes of a measured field's aggregate fields: ``pm25_ugm3_mean`` and so on."""


def window_label(length_s: int) -> str:
    """The suffix of an aggregate measurement: 60 -> '1m', 900 -> '15m', 3600 -> '1h', 86400 -> '1d'."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if length_s % size == 0:
            return f"{length_s // size}{unit}"
    return f"{length_s}s"


def aggregate_measurement(kind: str, length_s: int) -> str:
    """A kind's windows of one length: ``air_quality_1m``, ``footfall_15m``..."""
    return f"{kind}_{window_label(length_s)}"


def aggregate_field(field: str, stat: str) -> str:
    """A measured field's aggregate: ``aggregate_field("pm25_ugm3", "mean")`` is pm25_ugm3_mean."""
    if stat not in AGGREGATE_STATS:
        raise ValueError(f"{stat!r} is not one of {', '.join(AGGREGATE_STATS)}")
    return f"{field}_{stat}"


_QUALIFIED = re.compile(r'"(raw|agg)"\."')


def in_policies(query: str, raw_policy: str, agg_policy: str) -> str:
    """InfluxQL written against the default policies ("raw"."x", "agg"."x"), on the given ones."""
    names = {RAW_POLICY: raw_policy, AGG_POLICY: agg_policy}
    return _QUALIFIED.sub(lambda m: f'"{names[m[1]]}"."', query)
