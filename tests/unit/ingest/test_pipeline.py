"""The pipeline as a whole, on messages in memory: what it writes, and what it must never write."""

from __future__ import annotations

import orjson

from smartplace.config import IngestSettings, Settings
from smartplace.ingest.decode import RawMessage
from smartplace.ingest.pipeline import Pipeline

NOW_NS = 1_795_514_400 * 10**9


def pipeline() -> Pipeline:
    return Pipeline(Settings(ingest=IngestSettings(require_registered_devices=False)))


def message(kind: str, device: str, body: dict[str, object], minutes_ago: int) -> RawMessage:
    return RawMessage(
        f"smartplace/{kind}/{device}/reading", orjson.dumps(body), NOW_NS - minutes_ago * 60 * 10**9
    )


def test_footfall_is_never_aggregated_below_15_minutes() -> None:
    p = pipeline()
    bodies = [
        message(
            "footfall",
            "ff-0001",
            {"ts": (NOW_NS // 10**9) - 60 * m, "count_in": 3, "count_out": 2, "interval_s": 60},
            0,
        )
        for m in range(40, 0, -1)
    ]
    out = p.process(bodies)
    written = out.agg_lines + p.flush().agg_lines
    measurements = {line.split(",", 1)[0] for line in written}
    assert measurements == {"footfall_15m", "footfall_1h", "footfall_1d"}


def test_air_quality_gets_every_window_length() -> None:
    p = pipeline()
    p.process([message("air_quality", "aq-0001", {"pm25_ugm3": 5.0}, 0)])
    measurements = {line.split(",", 1)[0] for line in p.flush().agg_lines}
    assert measurements == {"air_quality_1m", "air_quality_15m", "air_quality_1h", "air_quality_1d"}
