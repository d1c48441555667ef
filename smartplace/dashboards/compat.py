"""The InfluxQL rules every shipped query keeps, so the compose database answers as the tests' does.

docker-compose.yml ships InfluxDB 1.11 and the tests run Debian's 1.6.7: one
engine line, where retention policies are real. A query is held to these rules:

- every ``FROM`` names its retention policy, one the stack creates
  (``deploy/influxdb/init.sh``): a query that leaned on the default policy
  would read ``raw`` in one deployment and ``autogen`` in another;
- it only reads (Grafana's and the feeds' accounts may only read, so a
  statement that writes or administers would fail on the shipped stack);
- ``SHOW TAG VALUES`` names its measurement with its policy and one key, and
  the measurement is one of that policy's own (aggregates end in their window,
  ``_15m``, ``_1h``; raw ones do not): the policy does not scope it (seen on
  1.6.7, tests/integration/test_dashboards.py), so it reads that measurement
  in every policy, and the stack writes no measurement name to both;
- it calls only functions InfluxQL 1.6 already has.

InfluxDB 2.x is not held to: there ``SHOW TAG VALUES`` reads the default
DBRP mapping only and ignores the policy in ``FROM`` (README: "Which InfluxDB").
"""

from __future__ import annotations

import re

READ_ONLY_VERBS = ("SELECT", "SHOW TAG VALUES", "SHOW TAG KEYS", "SHOW FIELD KEYS", "SHOW SERIES")
WRITING_WORDS = re.compile(r"\b(INTO|DROP|DELETE|CREATE|ALTER|GRANT|REVOKE|KILL|SET)\b", re.I)
FUNCTIONS_1_6 = frozenset(
    {
        "count", "distinct", "integral", "mean", "median", "mode", "spread", "stddev", "sum",
        "bottom", "first", "last", "max", "min", "percentile", "sample", "top", "abs", "ceil",
        "floor", "round", "derivative", "difference", "elapsed", "moving_average",
        "non_negative_derivative", "non_negative_difference", "cumulative_sum", "time", "now",
        "fill", "holt_winters",
    }
)  # fmt: skip
"""InfluxQL 1.6's functions (plus time(), now() and fill()): docs.influxdata.com/influxdb/v1.6."""

AGG_POLICY = "agg"
AGGREGATE_NAME = re.compile(r"_\d+[smhd]$")
"""Aggregates are named {kind}_{window}; no raw measurement ends so (README: Storage)."""
_FROM = re.compile(r'\bFROM\s+(?!\()((?:"[^"]+"|[\w]+)(?:\.(?:"[^"]+"|/[^/]+/|[\w]+))?)', re.I)
_CALL = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\(", re.I)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|/(?:[^/\\]|\\.)+/")


def violations(query: str, retention_policies: set[str]) -> list[str]:
    """What in ``query`` breaks the rules above (empty when it keeps them all)."""
    found: list[str] = []
    statement = query.strip()
    if not statement.upper().startswith(READ_ONLY_VERBS):
        found.append("not a read-only statement")
    bare = _STRINGS.sub("''", statement)  # words inside names, regexes and strings are not keywords
    if WRITING_WORDS.search(bare):
        found.append("writes or administers")
    sources = _FROM.findall(statement)
    if not sources:
        found.append("names no measurement")
    for source in sources:
        policy, dot, _ = source.partition(".")
        if not dot:
            found.append(f"FROM {source} leans on the default retention policy")
        elif policy.strip('"') not in retention_policies:
            found.append(f"FROM {source}: the stack creates no retention policy {policy}")
    if statement.upper().startswith("SHOW TAG VALUES"):
        if not re.search(r'WITH KEY\s*=\s*"[^"]+"', statement):
            found.append("SHOW TAG VALUES names no single key")
        for source in sources:
            policy, _, measurement = (part.strip('"') for part in source.partition("."))
            if (policy == AGG_POLICY) != bool(AGGREGATE_NAME.search(measurement)):
                found.append(f"SHOW TAG VALUES FROM {source}: not a measurement of {policy} alone")
    for name in _CALL.findall(bare):
        if name.upper() in ("FROM", "AND", "OR", "IN", "WHERE", "BY", "AS", "SELECT"):
            continue
        if name.lower() not in FUNCTIONS_1_6:
            found.append(f"{name}() is not an InfluxQL 1.6 function")
    return found


def created_retention_policies(init_script: str) -> set[str]:
    """The retention policies the stack's InfluxDB init creates."""
    return set(re.findall(r'CREATE RETENTION POLICY "([^"]+)"', init_script))
