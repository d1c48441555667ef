"""The delivery ledger's open hours taken back from InfluxDB, when no saved state can be used.

Without the saved ledger, the spool's replay would count an hour's readings
again from what the spool still holds, and the hour's point, holding the
counts of every reading before the restart, would be overwritten with the
part. Before the replay, the points of the hours still open are read back
(``DeliveryLedger.resume``): each says up to which arrival it counted, and
the replay counts only what came after.
"""

from __future__ import annotations

import logging

from smartplace.errors import InfluxAuthError, InfluxError, InfluxUnavailableError
from smartplace.influx import InfluxClient, quote_identifier
from smartplace.ingest.ledger import HOUR_NS, DeliveryLedger, resume_horizon
from smartplace.storage import DELIVERY_LEDGER

log = logging.getLogger(__name__)


def resume_ledger(
    influx: InfluxClient, ledger: DeliveryLedger, now_ns: int, oldest_arrival_ns: int | None
) -> int:
    """Read the open hours' ledger points into ``ledger``, and those of every hour the
    spool's replay reaches back to (``oldest_arrival_ns``, its first message's arrival);
    returns how many it took.

    Raises what may pass (InfluxDB unavailable, credentials), to be retried; any other
    refusal is said, and the hours start again from the replay, as before ingest kept marks.
    """
    policy = quote_identifier(influx.settings.raw_retention_policy)
    since_ns = resume_horizon(now_ns)
    if oldest_arrival_ns is not None:
        since_ns = min(since_ns, oldest_arrival_ns - oldest_arrival_ns % HOUR_NS)
    try:
        rows = influx.query_rows(
            f"SELECT * FROM {policy}.{quote_identifier(DELIVERY_LEDGER)}"  # noqa: S608 - quoted
            ' WHERE time >= $since GROUP BY "device_id"',
            {"since": since_ns},
        )
    except (InfluxUnavailableError, InfluxAuthError):
        raise
    except InfluxError as exc:
        log.error(
            "COULD NOT RESUME the delivery ledger from InfluxDB (%s): its open hours count"
            " again from the spool's replay, and their points hold only that",
            exc,
        )
        ledger.resume_pending = False
        return 0
    taken = ledger.resume(rows, now_ns, since_ns)
    log.warning(
        "no saved state: the delivery ledger's open hours resumed from InfluxDB (%d points);"
        " the spool's replay counts only what arrived after them",
        taken,
    )
    return taken
