"""The pipeline's state apart from its settings: saved, loaded, migrated, and settings that win."""

from __future__ import annotations

import logging
import struct
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from smartplace.config import IngestSettings, Settings
from smartplace.errors import InfluxError, InfluxUnavailableError, StateFileError
from smartplace.ingest.ledger import HOUR_NS
from smartplace.ingest.pipeline import Pipeline, PipelineOutput
from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.spool import Spool
from smartplace.ingest.recovery.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from smartplace.ingest.recovery.ledger_resume import resume_ledger
from smartplace.ingest.recovery.state import (
    FORMAT_VERSION,
    Snapshot,
    export_pipeline,
    restore_pipeline,
)
from smartplace.ingest.service import IngestService
from smartplace.schemas.ttn import TtnMemory
from tests.unit.schemas.test_ttn import uplink as ttn_uplink

NOW_NS = 1_795_514_400 * 10**9
NOW_S = NOW_NS // 10**9


def settings(**ingest: object) -> Settings:
    return Settings(
        ingest=IngestSettings(require_registered_devices=False, **ingest)  # type: ignore[arg-type]
    )


def restored_copy(pipeline: Pipeline, into: Settings | None = None) -> Pipeline:
    """The pipeline as a restart gets it back: through the checkpoint file, into a new one."""
    with tempfile.TemporaryDirectory() as directory:
        save_checkpoint(Path(directory), 7, export_pipeline(pipeline))
        checkpoint = load_checkpoint(Path(directory))
    assert checkpoint is not None
    assert checkpoint.committed_seq == 7
    assert checkpoint.state is not None
    copy = Pipeline(into or settings())
    restore_pipeline(copy, checkpoint.state)
    return copy


def mixed_stream(start: int, count: int) -> list[RawMessage]:
    """Air quality at a registered site, footfall, bins (with a collection) and a registry record."""
    messages = [
        RawMessage(
            "smartplace/registry/aq-0001",
            orjson.dumps({"device_id": "aq-0001", "kind": "air_quality", "site": "market"}),
            NOW_NS - 10**12,
        )
    ]
    for i in range(start, start + count):
        arrival = NOW_NS - (400 - i) * 10**9
        ts = NOW_S - (400 - i) * 20
        for device in ("aq-0001", "aq-0002"):
            body = {"ts": ts, "no2_ugm3": 20 + (i % 17) * 0.5, "pm25_ugm3": 5 + (i % 7) * 0.3}
            messages.append(
                RawMessage(f"smartplace/air_quality/{device}/reading", orjson.dumps(body), arrival)
            )
        footfall = {"ts": ts, "count_in": i % 5, "count_out": i % 3, "interval_s": 20}
        messages.append(
            RawMessage("smartplace/footfall/ff-0001/reading", orjson.dumps(footfall), arrival)
        )
        fill = 90.0 if i % 50 == 49 else 10.0 + (i % 50)
        messages.append(
            RawMessage(
                "smartplace/bin/bin-0001/reading",
                orjson.dumps({"ts": ts, "fill_pct": fill}),
                arrival,
            )
        )
    return messages


def outputs(out: PipelineOutput) -> tuple[list[str], list[str]]:
    # Restored windows sit in other state rows, so a batch emits them in another order:
    # each is its own point, so the order within one write changes nothing stored.
    return out.raw.lines, sorted(out.agg.lines)


def test_every_part_of_the_state_comes_back_exactly() -> None:
    """After a save and a load, the copy writes, point for point, what the original writes."""
    original = Pipeline(settings())
    original.process(mixed_stream(0, 170))
    copy = restored_copy(original)
    rest = mixed_stream(170, 230)[1:]
    for batch in (rest[:300], rest[300:]):
        assert outputs(copy.process(batch)) == outputs(original.process(batch))
    assert outputs(copy.flush()) == outputs(original.flush())
    assert copy.directory.sites == {"aq-0001": "market"}


def _service_after_restart(tmp_path: Path, saved: Pipeline, **ingest: object) -> IngestService:
    save_checkpoint(tmp_path, 0, export_pipeline(saved))
    service = IngestService(settings(spool_dir=tmp_path, **ingest))
    spool = Spool(tmp_path, 1 << 20)
    try:
        assert service._recover(spool) == 0
    finally:
        spool.close()
    return service


def test_windows_grace_and_maximum_age_changed_between_runs_take_effect(tmp_path: Path) -> None:
    before = Pipeline(settings(windows_s=[60], window_grace_s=120))
    before.process(mixed_stream(0, 50))
    open_before = before._aggregators["air_quality"][0].open_windows
    assert open_before == 6  # three minutes per device within the grace period

    service = _service_after_restart(
        tmp_path, before, windows_s=[60, 3600], window_grace_s=30, max_age_s=10
    )
    after = service.pipeline
    assert after.windows_s == [60, 3600]
    assert after.limits.max_age_ns == 10 * 10**9
    minute, hour = after._aggregators["air_quality"]
    assert (minute.length_ns, minute.grace_ns, minute.open_windows) == (60 * 10**9, 30 * 10**9, 6)
    assert not minute.rebuilding
    # The new length has no saved state: it waits for the rebuild from InfluxDB.
    assert (hour.length_ns, hour.rebuilding) == (3600 * 10**9, True)
    assert service._to_rebuild == {"air_quality": [3600], "bin": [3600], "footfall": [3600]}
    stale = RawMessage(
        "smartplace/air_quality/aq-0009/reading",
        orjson.dumps({"ts": NOW_S - 20, "no2_ugm3": 3.0}),
        NOW_NS,
    )
    assert [r.reason.value for r in after.process([stale]).rejects] == ["stale_timestamp"]


def test_a_window_length_no_longer_configured_is_dropped_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = Pipeline(settings(windows_s=[60, 900]))
    before.process(mixed_stream(0, 50))
    with caplog.at_level(logging.WARNING):
        service = _service_after_restart(tmp_path, before, windows_s=[900])
    assert [a.length_ns for a in service.pipeline._aggregators["air_quality"]] == [900 * 10**9]
    assert service._to_rebuild == {}
    assert "saved state for air_quality 60 s windows (not configured now) dropped" in caplog.text


def as_format_0(snapshot: Snapshot) -> Snapshot:
    """The oldest layout: no per-window dirty flag, no shard, no closed windows' ends, no
    ledger marks."""
    dropped = (".dirty", ".closed_through")
    arrays = {k: v for k, v in snapshot.arrays.items() if not k.endswith(dropped)}
    later = ("shard", "ledger_through", "ledger_resumed", "reject_ordinal")
    document = {k: v for k, v in snapshot.document.items() if k not in later}
    return Snapshot({**document, "format": 0}, arrays)


def test_a_format_0_state_is_migrated_and_carries_on(tmp_path: Path) -> None:
    stream = mixed_stream(0, 400)
    whole = Pipeline(settings())
    expected = whole.process(stream).agg.lines + whole.flush().agg.lines

    first = Pipeline(settings())
    before = first.process(stream[:500]).agg.lines
    save_checkpoint(tmp_path, 3, as_format_0(export_pipeline(first)))
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.state is not None
    assert checkpoint.state.document["format"] == 0
    copy = Pipeline(settings())
    restored = restore_pipeline(copy, checkpoint.state)
    assert ("air_quality", 86400) in restored.windows
    after = copy.process(stream[500:]).agg.lines + copy.flush().agg.lines
    assert _last_per_point(before + after) == _last_per_point(expected)


@pytest.mark.parametrize("version", [0, 2])
@pytest.mark.parametrize("windows", [None, 7, "x"])
def test_an_older_format_whose_windows_is_not_a_list_is_refused(
    version: int, windows: object
) -> None:
    snapshot = export_pipeline(Pipeline(settings()))
    snapshot.document.update(format=version, windows=windows)
    with pytest.raises(StateFileError, match="windows is not a list"):
        restore_pipeline(Pipeline(settings()), snapshot)


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, -1, "1"])
def test_a_format_with_no_migration_is_refused(version: object) -> None:
    snapshot = export_pipeline(Pipeline(settings()))
    snapshot.document["format"] = version
    with pytest.raises(StateFileError):
        restore_pipeline(Pipeline(settings()), snapshot)


def test_the_state_file_holds_json_and_plain_arrays(tmp_path: Path) -> None:
    p = Pipeline(settings())
    p.process(mixed_stream(0, 20))
    save_checkpoint(tmp_path, 1, export_pipeline(p))
    with zipfile.ZipFile(tmp_path / CHECKPOINT_FILE) as archive:
        names = archive.namelist()
        header = orjson.loads(archive.read("checkpoint.json"))
    assert names[0] == "checkpoint.json"
    assert all(n.startswith("arrays/") and n.endswith(".npy") for n in names[1:])
    assert header["committed_seq"] == 1
    assert header["state"]["format"] == FORMAT_VERSION
    assert "arrays/windows.air_quality.60.sums.npy" in names


def _last_per_point(lines: list[str]) -> dict[tuple[str, str], str]:
    last = {}
    for line in lines:
        series, fields, ts = line.rsplit(" ", 2)
        last[series, ts] = fields
    return last


class _RefusingInflux:
    """Stands in for an InfluxDB that refuses the rebuild's query for good (a unit test)."""

    def __init__(self, error: InfluxError) -> None:
        self.error = error
        self.settings = Settings().influx

    def query_rows(self, *_args: object, **_kwargs: object) -> list[dict[str, object]]:
        raise self.error


def _started_without_state(spool_dir: Path) -> IngestService:
    """A service recovered from an empty spool: no saved state, everything to rebuild."""
    service = IngestService(settings(spool_dir=spool_dir))
    spool = Spool(spool_dir, 1 << 20)
    service._recover(spool)
    spool.close()
    return service


def test_a_rebuild_influxdb_refuses_leaves_empty_windows_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = _started_without_state(tmp_path)
    refusing = _RefusingInflux(InfluxError("InfluxQL error: database not found"))
    with caplog.at_level(logging.ERROR):
        assert service._rebuild(refusing).lines == []  # type: ignore[arg-type]
    assert "COULD NOT REBUILD windows" in caplog.text
    assert service._to_rebuild == {}
    assert not any(a.rebuilding for a in service.pipeline._aggregators["air_quality"])


def test_a_rebuild_waits_while_influxdb_is_unavailable(tmp_path: Path) -> None:
    service = _started_without_state(tmp_path)
    with pytest.raises(InfluxUnavailableError):
        service._rebuild(_RefusingInflux(InfluxUnavailableError("down")))  # type: ignore[arg-type]
    assert service._to_rebuild["air_quality"] == [60, 900, 3600, 86400]  # tried again later


def test_a_ledger_resume_influxdb_refuses_is_said_and_ingest_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = _started_without_state(tmp_path)
    ledger = service.pipeline.ledger
    assert ledger.resume_pending  # no saved state
    refusing = _RefusingInflux(InfluxError("InfluxQL error: retention policy not found"))
    with caplog.at_level(logging.ERROR):
        assert resume_ledger(refusing, ledger, NOW_NS, None) == 0  # type: ignore[arg-type]
    assert "COULD NOT RESUME the delivery ledger" in caplog.text
    assert not ledger.resume_pending
    ledger.resume_pending = True
    down = _RefusingInflux(InfluxUnavailableError("down"))
    with pytest.raises(InfluxUnavailableError):
        resume_ledger(down, ledger, NOW_NS, None)  # type: ignore[arg-type]
    assert ledger.resume_pending  # tried again later


def test_lorawan_memory_comes_back_exactly() -> None:
    """Frames seen, counter baselines, highest frame counters and wraps survive a restart, so a
    duplicate frame is still refused and the next counter frame counts from its baseline."""
    original = Pipeline(settings())
    ttn = original.ttn
    assert ttn.first_sighting("fc-0001", "sess-a", 41)
    ttn.note_frame("fc-0001", "fc-0001", "sess-a", 41)
    ttn.note_frame("fc-0001", "fc-0001", "sess-a", 44)  # two missed
    ttn.take_frame_events()
    ttn.restore_memory(
        TtnMemory(
            seen=[],
            counters=[["fc-0001", 5 * 10**9, {"line_1_total_in": 7}]],
            highest_f_cnt=[],
            wraps=2,
        )
    )
    copy = restored_copy(original)
    assert copy.ttn.export_memory() == original.ttn.export_memory()
    memory = copy.ttn.export_memory()
    assert memory.counters == [["fc-0001", 5 * 10**9, {"line_1_total_in": 7}]]
    assert memory.highest_f_cnt == [["fc-0001", "sess-a", 44]]
    assert memory.wraps == 2
    assert not copy.ttn.first_sighting("fc-0001", "sess-a", 41)
    copy.ttn.note_frame("fc-0001", "fc-0001", "sess-a", 46)
    assert copy.ttn.take_frame_events() == [("fc-0001", "missed_frames", 1, 0)]


def test_a_grace_raised_between_runs_does_not_reopen_a_window_already_written() -> None:
    minute = NOW_S - NOW_S % 60 - 600

    def reading(ts: int, value: float) -> RawMessage:
        body = orjson.dumps({"ts": ts, "no2_ugm3": value})
        return RawMessage("smartplace/air_quality/aq-0002/reading", body, NOW_NS)

    before = Pipeline(settings(windows_s=[60], window_grace_s=60))
    closed = before.process([reading(minute + 10 * i, 10.0 + i) for i in range(6)])
    assert closed.agg.lines == []
    # 200 s on: the first minute closes (its end + the grace has passed) and is written.
    [written] = before.process([reading(minute + 200, 1.0)]).agg.lines[:1]
    assert "no2_ugm3_count=6i" in written
    after = restored_copy(before, settings(windows_s=[60], window_grace_s=600))
    late = after.process([reading(minute + 35, 99.0)])
    assert (late.late_beyond_grace, late.agg.lines) == (1, [])


def test_devices_first_seen_out_of_alphabetical_order_come_back() -> None:
    """Slots are given in the order devices are first seen; a restore must keep that order
    (it used to give them sorted and refuse its own state)."""

    def reading(device: str, ts: int) -> RawMessage:
        body = orjson.dumps({"ts": ts, "no2_ugm3": 20.0, "pm25_ugm3": 5.0})
        return RawMessage(f"smartplace/air_quality/{device}/reading", body, NOW_NS)

    original = Pipeline(settings())
    original.process([reading("aq-0009", NOW_S - 300)])
    original.process([reading("aq-0001", NOW_S - 290), reading("aq-0005", NOW_S - 280)])
    copy = restored_copy(original)
    later = [reading(d, NOW_S - 100) for d in ("aq-0005", "aq-0009", "aq-0001")]
    assert outputs(copy.process(later)) == outputs(original.process(later))
    assert outputs(copy.flush()) == outputs(original.flush())


def test_a_replay_batch_across_a_resumed_mark_counts_each_frame_gap_once() -> None:
    """The point counted the gap 2 -> 5 up to the fourth uplink's arrival; with the state lost
    all five come back in one batch: only the gap 6 -> 9, after the mark, is new."""
    hour = NOW_NS - NOW_NS % HOUR_NS

    def uplink(f_cnt: int, i: int) -> RawMessage:
        frame = struct.pack("<BBBBBH", 0x01, 0x75, 80, 0x03, 0x82, 300 + f_cnt)
        at = datetime.fromtimestamp(NOW_S - 1000 + 60 * i, UTC).isoformat()
        body = ttn_uplink("bin-0042", f_cnt, at, frm=frame, model_id="em310-udl")
        topic = "v3/town-bins@ttn/devices/bin-0042/up"
        return RawMessage(topic, orjson.dumps(body), hour + (i + 1) * 10**9)

    uplinks = [uplink(f_cnt, i) for i, f_cnt in enumerate([1, 2, 5, 6, 9])]
    pipeline = Pipeline(settings())
    point = {
        "device_id": "bin-0042",
        "time": hour,
        "missed_frames": 2,
        "through_ns": hour + 4 * 10**9,
    }
    assert pipeline.ledger.resume([point], hour + 10 * 10**9) == 1
    pipeline.process(uplinks)
    assert pipeline.ledger._totals["bin-0042", hour]["missed_frames"] == 4


def test_a_grace_lowered_between_runs_still_takes_readings_for_windows_never_written() -> None:
    """The wall clock closed a quiet device's minute under a grace of 600 s; after a restart
    with 10 s its readings for the next minutes, never written, are not late (all 12 were)."""
    minute = NOW_S - NOW_S % 60 - 3600

    def reading(ts: int, value: float, arrival_ns: int) -> RawMessage:
        body = orjson.dumps({"ts": ts, "no2_ugm3": value})
        return RawMessage("smartplace/air_quality/aq-0002/reading", body, arrival_ns)

    start_ns = minute * 10**9
    before = Pipeline(settings(windows_s=[60], window_grace_s=600))
    before.process([reading(minute + 10 * i, 10.0 + i, start_ns + i * 10**10) for i in range(6)])
    [written] = before.tick(start_ns + 661 * 10**9).agg.lines
    assert "no2_ugm3_count=6i" in written
    after = restored_copy(before, settings(windows_s=[60], window_grace_s=10))
    back_ns = start_ns + 700 * 10**9
    later = [reading(minute + 60 + 5 * i, 50.0, back_ns + i) for i in range(12)]
    assert after.process(later).late_beyond_grace == 0
    again = after.process([reading(minute + 30, 99.0, back_ns + 20)])  # the written minute
    assert again.late_beyond_grace == 1
