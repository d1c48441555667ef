"""Hostile checkpoint files in the spool directory: each is refused with a log line, runs
nothing, and leaves ingest starting with its windows rebuilt from InfluxDB."""

from __future__ import annotations

import io
import logging
import pickle
import zipfile
from pathlib import Path

import numpy as np
import orjson
import pytest

from smartplace.errors import StateFileError
from smartplace.ingest.pipeline import Pipeline
from smartplace.ingest.receive.spool import Spool
from smartplace.ingest.recovery.checkpoint import (
    CHECKPOINT_FILE,
    LEGACY_PICKLE,
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from smartplace.ingest.recovery.state import export_pipeline, restore_pipeline
from smartplace.ingest.service import IngestService
from tests.unit.ingest.test_state import mixed_stream, settings

pytestmark = pytest.mark.security


class _Runs:
    """Unpickling this creates a file: proof that loading executed code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.marker), "ran"))  # type: ignore[return-value]


def _saved(tmp_path: Path) -> Path:
    pipeline = Pipeline(settings())
    pipeline.process(mixed_stream(0, 60))
    save_checkpoint(tmp_path, 5, export_pipeline(pipeline))
    return tmp_path / CHECKPOINT_FILE


def _archive(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def _header(state: object, committed_seq: object = 5) -> bytes:
    return orjson.dumps({"committed_seq": committed_seq, "written_by": "x", "state": state})


def _refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert load_checkpoint(tmp_path) == Checkpoint(0, None)
    assert "CHECKPOINT REFUSED" in caplog.text


def test_a_pickle_in_either_name_is_never_executed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "executed"
    payload = pickle.dumps(_Runs(marker))
    (tmp_path / LEGACY_PICKLE).write_bytes(payload)
    with caplog.at_level(logging.WARNING):
        assert load_checkpoint(tmp_path) == Checkpoint(0, None)
    assert "is a pickle from an older ingest: not loaded" in caplog.text
    (tmp_path / CHECKPOINT_FILE).write_bytes(payload)
    _refused(tmp_path, caplog)
    assert not marker.exists()


def test_an_object_array_holding_a_pickle_is_refused_unread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "executed"
    hostile = np.array([_Runs(marker)], dtype=object)
    _archive(
        tmp_path / CHECKPOINT_FILE,
        {"checkpoint.json": _header({}), "arrays/x.npy": _npy(hostile, allow_pickle=True)},
    )
    _refused(tmp_path, caplog)
    assert "type '|O' is not allowed" in caplog.text
    assert not marker.exists()


def test_a_truncated_checkpoint_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _refused(tmp_path, caplog)


def test_an_array_claiming_a_huge_shape_is_refused_before_allocating(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    small = _npy(np.zeros(1, dtype=np.int64))
    huge = small.replace(b"(1,)", b"(1000000000000,)")  # 8 TB claimed
    assert huge != small
    _archive(tmp_path / CHECKPOINT_FILE, {"checkpoint.json": _header({}), "arrays/x.npy": huge})
    _refused(tmp_path, caplog)
    assert "shape (1000000000000,) needs 8000000000000 bytes" in caplog.text


def test_a_compressed_member_is_refused_unexpanded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bomb = {"checkpoint.json": _header({}), "arrays/x.npy": b"\0" * (8 << 20)}
    _archive(tmp_path / CHECKPOINT_FILE, bomb, zipfile.ZIP_DEFLATED)
    assert (tmp_path / CHECKPOINT_FILE).stat().st_size < 64 * 1024
    _refused(tmp_path, caplog)
    assert "its members claim more bytes than the file holds" in caplog.text


def test_a_compressed_member_is_refused_even_when_small(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    members = {"checkpoint.json": _header({}), "arrays/x.npy": _npy(np.zeros(1))}
    _archive(tmp_path / CHECKPOINT_FILE, members, zipfile.ZIP_DEFLATED)
    _refused(tmp_path, caplog)
    assert "is compressed" in caplog.text


@pytest.mark.parametrize(
    "members",
    [
        {"checkpoint.json": _header({}, committed_seq="5")},
        {"checkpoint.json": _header({}, committed_seq=-1)},
        {"checkpoint.json": _header([])},
        {"checkpoint.json": b"{not json"},
        {"checkpoint.json": _header({}), "../escape.npy": b""},
        {"arrays/x.npy": _npy(np.zeros(1))},
    ],
    ids=["offset-text", "offset-negative", "state-list", "not-json", "odd-member", "no-header"],
)
def test_a_header_of_the_wrong_shape_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, members: dict[str, bytes]
) -> None:
    _archive(tmp_path / CHECKPOINT_FILE, members)
    _refused(tmp_path, caplog)


def _tampered(tmp_path: Path, change: str) -> StateFileError:
    _saved(tmp_path)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.state is not None
    state = checkpoint.state
    windows = state.document["windows"][0]
    key = f"windows.{windows['kind']}.{windows['length_s']}"
    if change == "array-type":
        state.arrays[f"{key}.counts"] = state.arrays[f"{key}.counts"].astype(np.float64)
    elif change == "array-shape":
        state.arrays[f"{key}.sums"] = state.arrays[f"{key}.sums"][:, :1]
    elif change == "slot-out-of-range":
        state.arrays[f"{key}.slot"] = state.arrays[f"{key}.slot"] + 1000
    elif change == "field-type":
        windows["rows"] = "3"
    elif change == "unknown-key":
        state.document["extra"] = 1
    elif change == "quality-fields":
        state.document["quality"][0]["fields"] = ["pm25_ugm3"]
    elif change == "window-value-nan":
        state.arrays[f"{key}.mins"] = np.full_like(state.arrays[f"{key}.mins"], np.nan)
    elif change == "window-count-negative":
        state.arrays[f"{key}.counts"] = state.arrays[f"{key}.counts"] - 1_000
    elif change == "site-sum-infinite":
        state.arrays["daqi.0.sums"] = np.full_like(state.arrays["daqi.0.sums"], np.inf)
    elif change == "registry-record":
        state.document["registry"] = [{"device_id": "../../etc", "kind": "x"}]
    pipeline = Pipeline(settings())
    before = export_pipeline(pipeline)
    with pytest.raises(StateFileError) as raised:
        restore_pipeline(pipeline, state)
    # All or nothing: the refused state left nothing behind.
    assert export_pipeline(pipeline).document == before.document
    return raised.value


@pytest.mark.parametrize(
    "change",
    [
        "array-type",
        "array-shape",
        "slot-out-of-range",
        "field-type",
        "unknown-key",
        "quality-fields",
        "window-value-nan",
        "window-count-negative",
        "site-sum-infinite",
        "registry-record",
    ],
)
def test_a_state_whose_parts_do_not_fit_is_refused_whole(tmp_path: Path, change: str) -> None:
    error = _tampered(tmp_path, change)
    assert str(error)


HOUR = 1_795_514_400 * 10**9  # an hour's start
LEDGER_CHANGES = {
    "mark-beyond-int64": {"ledger_through": [2**64 - 1, 0]},
    "mark-negative": {"ledger_through": [-1, 0]},
    "mark-a-bool": {"ledger_through": [True, 0]},
    "resumed-mark-beyond-int64": {"ledger_resumed": [["aq-0001", HOUR, 2**63, 0]]},
    "resumed-off-its-hour": {"ledger_resumed": [["aq-0001", HOUR + 1, HOUR + 5, 0]]},
    "resumed-hour-twice": {
        "ledger_resumed": [["aq-0001", HOUR, HOUR + 5, 0], ["aq-0001", HOUR, HOUR + 9, 0]]
    },
    "total-beyond-int64": {"ledger": [["aq-0001", HOUR, {"received": 2**63}]]},
    "total-off-its-hour": {"ledger": [["aq-0001", HOUR - 1, {"received": 1}]]},
    "total-hour-twice": {
        "ledger": [["aq-0001", HOUR, {"received": 1}], ["aq-0001", HOUR, {"received": 2}]]
    },
    "latest-arrival-beyond-int64": {"latest_arrival_ns": 2**63},
    "total-no-ledger-keeps": {"ledger": [["aq-0001", HOUR, {"a\nb": 1}]]},
    "touched-with-no-totals": {"ledger_touched": [["aq-0001", HOUR]]},
    "reject-place-negative": {"reject_ordinal": -5},
    "site-time-beyond-int64": {"sites": [{"site": "market", "latest_ns": 2**64 - 1, "due": []}]},
    "site-due-off-its-hour": {"sites": [{"site": "market", "latest_ns": HOUR, "due": [HOUR + 1]}]},
}


@pytest.mark.parametrize("change", LEDGER_CHANGES)
def test_a_ledger_mark_or_total_influxdb_could_not_hold_is_refused(
    tmp_path: Path, change: str
) -> None:
    """Marks go into every ledger point and say which arrivals a restart counts again."""
    _saved(tmp_path)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.state is not None
    checkpoint.state.document.update(LEDGER_CHANGES[change])
    pipeline = Pipeline(settings())
    before = export_pipeline(pipeline)
    with pytest.raises(StateFileError):
        restore_pipeline(pipeline, checkpoint.state)
    assert export_pipeline(pipeline).document == before.document


def test_ingest_starts_on_a_hostile_state_and_rebuilds_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _saved(tmp_path)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None
    assert checkpoint.state is not None
    checkpoint.state.document["windows"][0]["rows"] = 10**9
    save_checkpoint(tmp_path, 5, checkpoint.state)
    service = IngestService(settings(spool_dir=tmp_path))
    spool = Spool(tmp_path, 1 << 20)
    spool.append(mixed_stream(0, 5))  # the five records the saved offset is past
    with caplog.at_level(logging.ERROR):
        assert service._recover(spool) == 5  # the offset is still good
    spool.close()
    assert "SAVED STATE REFUSED" in caplog.text
    assert service.pipeline._aggregators["air_quality"][0].open_windows == 0
    assert service._to_rebuild == {
        "air_quality": [60, 900, 3600, 86400],
        "bin": [900, 3600, 86400],
        "footfall": [900, 3600, 86400],
    }
