"""The spool: what was appended (and fsynced) comes back, in order, after any crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smartplace.ingest.receive.message import RawMessage
from smartplace.ingest.receive.spool import Spool, encode_record


def message(n: int, payload: bytes | None = None) -> RawMessage:
    body = payload if payload is not None else f'{{"no2_ugm3": {n}}}'.encode()
    return RawMessage(f"sp/air_quality/dev-{n % 3}/reading", body, 1_700_000_000 + n)


def contents(spool: Spool, from_seq: int = 0) -> list[tuple[int, RawMessage]]:
    return [(r.seq, r.message) for r in spool.read(from_seq, 10_000)]


# Reads come from the in-memory tail when it still holds them (the default), else from disk (0).
TAILS = pytest.mark.parametrize("tail_bytes", [0, 4 << 20], ids=["disk", "memory"])


@TAILS
def test_appended_messages_come_back_in_order_with_their_sequence_numbers(
    tmp_path: Path, tail_bytes: int
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, tail_bytes=tail_bytes)
    assert spool.append([message(0), message(1)]) == 2
    assert spool.append([message(2)]) == 3
    assert contents(spool) == [(0, message(0)), (1, message(1)), (2, message(2))]
    assert contents(spool, 2) == [(2, message(2))]


def test_the_redelivered_flag_and_odd_bytes_survive(tmp_path: Path) -> None:
    odd = RawMessage("sp/x/\udcff/reading", b"\x00\xff" * 10, 5, redelivered=True)
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append([odd])
    assert contents(Spool(tmp_path, max_bytes=1 << 20)) == [(0, odd)]


@TAILS
def test_reading_on_in_small_steps_sees_every_record_once(tmp_path: Path, tail_bytes: int) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096, tail_bytes=tail_bytes)
    for start in range(0, 300, 30):
        spool.append([message(n) for n in range(start, start + 30)])
    seen, seq = [], 0
    while batch := spool.read(seq, 7):
        seen.extend(r.seq for r in batch)
        seq = batch[-1].seq + 1
    assert seen == list(range(300))
    assert len(list(tmp_path.glob("*.seg"))) > 3  # it did roll over segments


def test_reopening_continues_the_sequence(tmp_path: Path) -> None:
    Spool(tmp_path, max_bytes=1 << 20).append([message(0), message(1)])
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.next_seq == 2
    spool.append([message(2)])
    assert [seq for seq, _ in contents(spool)] == [0, 1, 2]


@given(cut=st.integers(min_value=1, max_value=200), garbage=st.binary(max_size=40))
@settings(max_examples=60, deadline=None)
def test_a_torn_tail_is_cut_back_to_the_last_whole_record(
    tmp_path_factory: pytest.TempPathFactory, cut: int, garbage: bytes
) -> None:
    directory = tmp_path_factory.mktemp("spool")
    spool = Spool(directory, max_bytes=1 << 20)
    spool.append([message(n) for n in range(5)])
    spool.close()
    (segment,) = directory.glob("*.seg")
    last_length = len(encode_record(message(4)))
    whole = segment.read_bytes()
    # Junk that happens to write back the very bytes cut off makes the record whole again.
    assume(not (whole[: len(whole) - min(cut, last_length)] + garbage).startswith(whole))
    with segment.open("r+b") as handle:  # the crash: the last record half written, then junk
        handle.truncate(segment.stat().st_size - min(cut, last_length))
        handle.seek(0, os.SEEK_END)
        handle.write(garbage)
    reopened = Spool(directory, max_bytes=1 << 20)
    assert [seq for seq, _ in contents(reopened)] == [0, 1, 2, 3]
    assert reopened.next_seq == 4
    reopened.append([message(9)])
    assert contents(reopened)[-1] == (4, message(9))


def test_a_damaged_record_mid_log_skips_to_the_next_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096, tail_bytes=0)
    spool.append([message(n) for n in range(50)])
    spool.append([message(n) for n in range(50, 100)])
    first = sorted(tmp_path.glob("*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[len(encode_record(message(0))) + 12] ^= 0xFF  # inside record 1's body
    first.write_bytes(bytes(data))
    assert [seq for seq, _ in contents(spool)] == [0, *range(50, 100)]


def test_release_deletes_only_wholly_committed_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096)
    for start in range(0, 200, 50):
        spool.append([message(n) for n in range(start, start + 50)])
    before = spool.size_bytes
    spool.release(120)
    assert spool.size_bytes < before
    assert contents(spool)[0][0] <= 120  # nothing uncommitted was deleted
    assert [seq for seq, _ in contents(spool, 120)] == list(range(120, 200))


def test_full_is_reached_at_the_byte_limit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=64 * 1024)
    payload = b"x" * 1000
    while not spool.is_full:
        spool.append([message(0, payload)])
    assert spool.size_bytes >= 64 * 1024
    spool.release(spool.next_seq)
    assert not spool.is_full


def test_the_memory_tail_keeps_only_the_latest_appends_and_older_reads_go_to_disk(
    tmp_path: Path,
) -> None:
    batch_bytes = len(b"".join(encode_record(message(n)) for n in range(40, 50)))
    spool = Spool(tmp_path, max_bytes=1 << 20, tail_bytes=2 * batch_bytes)
    for start in range(0, 50, 10):
        spool.append([message(n) for n in range(start, start + 10)])
    assert [first for first, _, _ in spool._tail] == [30, 40]
    on_disk = Spool(tmp_path, max_bytes=1 << 20)  # a fresh one has nothing in memory
    assert contents(spool) == contents(on_disk) == [(n, message(n)) for n in range(50)]
    assert contents(spool, 35) == [(n, message(n)) for n in range(35, 50)]
    spool.read(45, 100)
    assert [first for first, _, _ in spool._tail] == [40]  # what the reader passed is let go


@TAILS
def test_a_read_stops_near_its_byte_budget_but_takes_at_least_one(
    tmp_path: Path, tail_bytes: int
) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, tail_bytes=tail_bytes)
    spool.append([message(n, b"x" * 1000) for n in range(10)])
    assert [r.seq for r in spool.read(0, 100, max_bytes=2500)] == [0, 1, 2]
    assert [r.seq for r in spool.read(3, 100, max_bytes=1)] == [3]
