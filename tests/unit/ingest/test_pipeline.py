"""The pipeline as a whole, on messages in memory: what it writes, and what it must never write."""

from __future__ import annotations

from dataclasses import replace

import orjson

from smartplace.config import IngestSettings, Settings
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.message import RawMessage
from tests.unit.ingest.test_state import restored_copy

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
    written = out.agg.lines + p.flush().agg.lines
    measurements = {line.split(",", 1)[0] for line in written}
    assert measurements == {"footfall_15m", "footfall_1h", "footfall_1d"}


def test_air_quality_gets_every_window_length() -> None:
    p = pipeline()
    p.process([message("air_quality", "aq-0001", {"pm25_ugm3": 5.0}, 0)])
    measurements = {line.split(",", 1)[0] for line in p.flush().agg.lines}
    assert measurements == {"air_quality_1m", "air_quality_15m", "air_quality_1h", "air_quality_1d"}


def aq_stream(count: int, device: str = "aq-0001") -> list[RawMessage]:
    start_s = NOW_NS // 10**9 - 3 * 3600
    return [
        RawMessage(
            f"smartplace/air_quality/{device}/reading",
            orjson.dumps({"ts": start_s + 30 * i, "no2_ugm3": 20 + (i % 17) * 0.5}),
            NOW_NS - (count - i) * 10**8,
        )
        for i in range(count)
    ]


def test_a_checkpointed_pipeline_carries_on_exactly_as_the_original() -> None:
    """Restoring from the checkpoint and processing the rest writes what one pipeline would."""
    stream = aq_stream(400)
    whole = pipeline()
    expected = whole.process(stream).agg.lines + whole.flush().agg.lines

    first = pipeline()
    before = first.process(stream[:170]).agg.lines
    restored = restored_copy(first)  # through the checkpoint file, as a restart does
    after = restored.process(stream[170:]).agg.lines + restored.flush().agg.lines
    # Windows emitted before and after the checkpoint overwrite each other (same series and
    # time), so what InfluxDB ends up holding is the last line per series and time.
    assert _last_per_point(before + after) == _last_per_point(expected)


def test_redelivered_messages_are_counted_once() -> None:
    stream = aq_stream(60)
    once = pipeline()
    expected = once.process(stream).agg.lines + once.flush().agg.lines
    twice = pipeline()
    redelivered = [replace(m, redelivered=True) for m in stream[40:55]]
    out = twice.process(stream[:55])
    again = twice.process(redelivered + stream[55:])
    assert again.redelivered == 15
    assert again.accepted == 5
    assert _last_per_point(out.agg.lines + again.agg.lines + twice.flush().agg.lines) == (
        _last_per_point(expected)
    )


def _last_per_point(lines: list[str]) -> dict[tuple[str, str], str]:
    last = {}
    for line in lines:
        series, fields, ts = line.rsplit(" ", 2)
        last[series, ts] = fields
    return last


def test_rejects_of_one_second_in_separate_batches_are_separate_points_at_precision_s() -> None:
    settings = Settings(ingest=IngestSettings(require_registered_devices=False))
    at_seconds = settings.influx.model_copy(update={"precision": "s"})
    p = Pipeline(settings.model_copy(update={"influx": at_seconds}))
    second = NOW_NS - NOW_NS % 10**9
    heads = []
    for n, at in enumerate([second + 1, second + 2, second + 10**9]):
        out = p.process([RawMessage("smartplace/air_quality/aq-1/reading", b"{%d" % n, at)])
        heads += [line.split(" ")[0] for line in out.raw.lines if line.startswith("ingest_")]
    assert heads == [
        "ingest_rejects,reason=malformed_json",
        "ingest_rejects,reason=malformed_json,seq=1",
        "ingest_rejects,reason=malformed_json",
    ]


def test_a_restart_within_one_second_carries_on_the_rejects_seq() -> None:
    settings = Settings(ingest=IngestSettings(require_registered_devices=False))
    at_seconds = settings.model_copy(
        update={"influx": settings.influx.model_copy(update={"precision": "s"})}
    )
    p = Pipeline(at_seconds)
    second = NOW_NS - NOW_NS % 10**9
    topic = "smartplace/air_quality/aq-1/reading"
    p.process([RawMessage(topic, b"{0", second + 1), RawMessage(topic, b"{1", second + 2)])
    restarted = restored_copy(p, at_seconds)
    out = restarted.process([RawMessage(topic, b"{2", second + 3)])
    [head] = [line.split(" ")[0] for line in out.raw.lines if line.startswith("ingest_")]
    assert head == "ingest_rejects,reason=malformed_json,seq=2"
