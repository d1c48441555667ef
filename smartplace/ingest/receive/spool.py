"""The disk spool: an append-only log of received messages, durable before they are acknowledged.

Layout: a directory of segment files named by the sequence number of their
first record (``00000000000000000042.seg``). A record is framed as

    length (u32, little-endian) | crc32 of the body (u32) | body

and its body is ``received_ns (i64) | redelivered (u8) | topic length (u16) | topic |
payload``.
A crash mid-append leaves a torn tail: a short frame or a CRC that does not
match. Opening the spool finds it and cuts the last segment back to its last
whole record, so a record is either wholly there or wholly gone, and it is
gone only if it was never fsynced, hence never acknowledged to the broker.

Sequence numbers count records from the spool's birth. The committed offset
(kept by the checkpoint, see ``checkpoint.py``) says how far InfluxDB holds
everything; segments wholly below it are deleted.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from smartplace.errors import SmartplaceError
from smartplace.ingest.receive.message import RawMessage

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<II")
_BODY_HEAD = struct.Struct("<qBH")
SEGMENT_SUFFIX = ".seg"


class SpoolError(SmartplaceError):
    """The spool directory cannot be used (permissions, a full disk, corruption mid-log)."""


def check_spool_directory(directory: Path) -> None:
    """Refuse a spool directory another user could write to: what it holds is replayed
    into the pipeline (and its checkpoint loaded) as ingest's own."""
    info = directory.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise SpoolError(f"the spool directory {directory} is not a directory")
    if info.st_uid != os.geteuid():
        raise SpoolError(
            f"the spool directory {directory} belongs to uid {info.st_uid}, not to this user "
            f"({os.geteuid()}): give it to the ingest user or choose another SMARTPLACE_INGEST__SPOOL_DIR"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SpoolError(
            f"the spool directory {directory} is writable by others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}): 'chmod 700 {directory}' or choose another"
        )
    # A directory that was writable by others once may still hold what they left there,
    # after a 'chmod 700' (which the message above suggests): a segment replayed as our own
    # readings from any device, or a state file. Everything in it must be ours.
    for entry in directory.iterdir():
        owner = entry.lstat().st_uid
        if owner != os.geteuid():
            raise SpoolError(
                f"the spool directory {directory} holds {entry.name}, which belongs to uid "
                f"{owner}, not to this user ({os.geteuid()}): another user may have written "
                f"it; remove it, or choose another SMARTPLACE_INGEST__SPOOL_DIR"
            )


def encode_record(message: RawMessage) -> bytes:
    topic = message.topic.encode("utf-8", "surrogateescape")
    head = _BODY_HEAD.pack(message.received_ns, message.redelivered, len(topic))
    body = head + topic + message.payload
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def decode_body(body: bytes) -> RawMessage:
    received_ns, redelivered, topic_length = _BODY_HEAD.unpack_from(body)
    start = _BODY_HEAD.size
    topic = body[start : start + topic_length].decode("utf-8", "surrogateescape")
    payload = body[start + topic_length :]
    return RawMessage(topic, payload, received_ns, redelivered=bool(redelivered))


def read_frames(handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(offset of the frame, body) for each whole record; stops at the first torn or bad one."""
    while True:
        offset = handle.tell()
        head = handle.read(_FRAME.size)
        body = b""
        if len(head) == _FRAME.size:
            length, crc = _FRAME.unpack(head)
            body = handle.read(length)
        if len(head) < _FRAME.size or len(body) < length or zlib.crc32(body) != crc:
            handle.seek(offset)  # the caller's position is the end of the last whole record
            return
        yield offset, body


@dataclass(frozen=True, slots=True)
class Segment:
    first_seq: int
    path: Path


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    seq: int
    message: RawMessage


class Spool:
    """Append (group commit: one fsync per batch), read from any offset, delete what is committed.

    One thread appends and one reads; ``appended`` wakes the reader. The latest
    appended batches also stay in memory (up to ``tail_bytes``), so a reader
    that keeps up takes them from there instead of reading back and decoding
    what was just written: that was a seventh of ingest's time (py-spy).
    """

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        segment_bytes: int = 8 << 20,
        tail_bytes: int = 4 << 20,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.tail_bytes = tail_bytes
        self._tail: deque[tuple[int, Sequence[RawMessage], int]] = deque()
        """(first sequence number, messages, their bytes on disk) of the latest appends."""
        self._tail_size = 0
        # Deletion is by whole segment, so a segment must be small beside the limit.
        self.segment_bytes = max(4096, min(segment_bytes, max_bytes // 8))
        self.appended = threading.Condition()
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool directory {directory}: {exc}") from exc
        check_spool_directory(directory)
        self._segments = self._scan()
        self._sizes = {s.first_seq: s.path.stat().st_size for s in self._segments}
        self.next_seq = self._recover_tail()
        self._writer: BinaryIO | None = None
        self._cursor: tuple[int, int, int] | None = None
        """Where the last read stopped: (segment, sequence number, byte offset)."""

    # -- opening -------------------------------------------------------------------

    def _scan(self) -> list[Segment]:
        segments = []
        for path in self.directory.glob(f"*{SEGMENT_SUFFIX}"):
            try:
                segments.append(Segment(int(path.stem), path))
            except ValueError:
                log.warning("spool: ignoring a stray file %s", path)
        return sorted(segments, key=lambda s: s.first_seq)

    def _recover_tail(self) -> int:
        """Cut a torn tail off the last segment; the next record's sequence number."""
        if not self._segments:
            return 0
        last = self._segments[-1]
        with last.path.open("r+b") as handle:
            count = sum(1 for _ in read_frames(handle))
            whole = handle.tell()
            size = handle.seek(0, os.SEEK_END)
            if whole < size:
                log.warning(
                    "spool: cut a torn tail of %d bytes from %s (a write the crash interrupted;"
                    " it was never acknowledged, so the broker still has it)",
                    size - whole,
                    last.path.name,
                )
                handle.truncate(whole)
                os.fsync(handle.fileno())
        self._sizes[last.first_seq] = whole
        return last.first_seq + count

    # -- appending (the receiving thread) -------------------------------------------

    def append(self, messages: Sequence[RawMessage]) -> int:
        """Write ``messages`` and fsync them; returns the sequence number after the last."""
        if not messages:
            return self.next_seq
        data = b"".join(encode_record(m) for m in messages)
        try:
            writer = self._writer_for(len(data))
            writer.write(data)
            writer.flush()
            os.fsync(writer.fileno())
        except OSError as exc:
            raise SpoolError(f"cannot write the spool in {self.directory}: {exc}") from exc
        with self.appended:
            self._sizes[self._segments[-1].first_seq] += len(data)
            self._tail.append((self.next_seq, messages, len(data)))
            self._tail_size += len(data)
            while self._tail_size > self.tail_bytes and self._tail:
                self._tail_size -= self._tail.popleft()[2]
            self.next_seq += len(messages)
            self.appended.notify_all()
        return self.next_seq

    def _writer_for(self, incoming: int) -> BinaryIO:
        current = self._segments[-1] if self._segments else None
        size = self._sizes[current.first_seq] if current else 0
        # A new segment when this one would overflow; an empty one takes any batch whole.
        if current is None or (size > 0 and size + incoming > self.segment_bytes):
            self._roll()
        if self._writer is None:
            self._writer = self._segments[-1].path.open("ab")
        return self._writer

    def _roll(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        segment = Segment(self.next_seq, self.directory / f"{self.next_seq:020d}{SEGMENT_SUFFIX}")
        segment.path.touch()
        _fsync_directory(self.directory)  # the new file's name is durable too
        with self.appended:
            self._segments.append(segment)
            self._sizes[segment.first_seq] = 0

    # -- reading (the writing thread) ------------------------------------------------

    def read(
        self, from_seq: int, max_messages: int, max_bytes: int = 1 << 62
    ) -> list[SpooledMessage]:
        """Up to ``max_messages`` records, and about ``max_bytes`` (at least one record),
        starting at ``from_seq`` (fewer at the end of the log).

        Records still in the in-memory tail come from there. Otherwise, reading on
        from where the last read stopped resumes at its byte offset, so draining
        the log sequentially costs each record one read.
        """
        with self.appended:
            from_tail = self._read_tail(from_seq, max_messages, max_bytes)
            if from_tail is not None:
                return from_tail
            segments = [s for s in self._segments if s.first_seq < self.next_seq]
            end_seq = self.next_seq
        out: list[SpooledMessage] = []
        size = 0
        for index, segment in enumerate(segments):
            segment_end = segments[index + 1].first_seq if index + 1 < len(segments) else end_seq
            if segment_end <= from_seq:
                continue
            seq, offset = segment.first_seq, 0
            cursor = self._cursor
            if cursor is not None and cursor[0] == segment.first_seq and cursor[1] <= from_seq:
                seq, offset = cursor[1], cursor[2]
            with segment.path.open("rb") as handle:
                handle.seek(offset)
                for frame_offset, body in read_frames(handle):
                    if seq >= end_seq or len(out) >= max_messages or size >= max_bytes:
                        self._cursor = (segment.first_seq, seq, frame_offset)
                        return out
                    if seq >= from_seq:
                        out.append(SpooledMessage(seq, decode_body(body)))
                        size += len(body)
                    seq += 1
                self._cursor = (segment.first_seq, seq, handle.tell())
            if seq < segment_end:
                # A bad record inside the log, not at its tail: the disk damaged it.
                log.error(
                    "spool: %s is damaged at record %d; skipping %d records to the next segment",
                    segment.path.name,
                    seq,
                    segment_end - seq,
                )
            if len(out) >= max_messages or size >= max_bytes:
                break
        return out

    def _read_tail(
        self, from_seq: int, max_messages: int, max_bytes: int
    ) -> list[SpooledMessage] | None:
        """The read from memory, or None when ``from_seq`` is no longer (or not yet) held."""
        tail = self._tail
        # What the reader has passed is not needed again (a restart reads the disk).
        while tail and tail[0][0] + len(tail[0][1]) <= from_seq and len(tail) > 1:
            self._tail_size -= tail.popleft()[2]
        if not tail or not tail[0][0] <= from_seq < self.next_seq:
            return None
        out: list[SpooledMessage] = []
        size = 0
        for first_seq, messages, _bytes in tail:
            for offset in range(max(0, from_seq - first_seq), len(messages)):
                if len(out) >= max_messages or size >= max_bytes:
                    return out
                message = messages[offset]
                out.append(SpooledMessage(first_seq + offset, message))
                size += len(message.payload) + len(message.topic)
        return out

    def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Wait until a record with sequence ``seq`` exists; whether it does."""
        with self.appended:
            return self.appended.wait_for(lambda: self.next_seq > seq, timeout_s)

    # -- committing ------------------------------------------------------------------

    def release(self, committed_seq: int) -> None:
        """Delete segments whose every record is below ``committed_seq``."""
        with self.appended:
            doomed = [
                segment
                for segment, following in zip(self._segments, self._segments[1:], strict=False)
                if following.first_seq <= committed_seq
            ]
            for segment in doomed:
                self._segments.remove(segment)
                del self._sizes[segment.first_seq]
        for segment in doomed:
            segment.path.unlink(missing_ok=True)

    @property
    def size_bytes(self) -> int:
        with self.appended:
            return sum(self._sizes.values())

    @property
    def is_full(self) -> bool:
        return self.size_bytes >= self.max_bytes

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
