"""The committed offset, saved with the pipeline's state as of that offset.

After a crash, ingest loads the checkpoint and replays the spool from its
offset: the state comes back exactly as it was, and the records after the
offset are processed again. Their points were perhaps written already;
writing them again is harmless, because a point is keyed by series and time.

The file, ``checkpoint.state``, is a zip archive, stored (not compressed):

- ``checkpoint.json``: ``{"committed_seq": int, "written_by": version,
  "state": document}``, the document as ``state.py`` describes it (its own
  ``format`` version, migrations there);
- ``arrays/NAME.npy``: one numpy array per name the document's parts use, in
  numpy's .npy format, written with ``allow_pickle=False``.

Loading executes nothing: JSON, and arrays whose header is checked (a plain
number type, a shape whose bytes are exactly those present) before a byte of
data is read, in a file of at most ``MAX_CHECKPOINT_BYTES``. A file that is
not such a checkpoint is refused with a log line, and ingest goes on without
it (``service.py`` then rebuilds the open windows from InfluxDB). An older
ingest's ``checkpoint.pickle`` is never opened.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from smartplace import __version__
from smartplace.errors import StateFileError
from smartplace.ingest.recovery.state import ALLOWED_DTYPES, Snapshot

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.state"
LEGACY_PICKLE = "checkpoint.pickle"
"""What ingest 0.1 wrote: a pickle, which loading would execute. Never opened."""
MAX_CHECKPOINT_BYTES = 2 << 30
"""A real state is tens of MiB (a few thousand devices' open windows and histories);
anything larger is not ours, and is refused before it is read."""
MAX_MEMBERS = 100_000
_DOCUMENT = "checkpoint.json"
_ARRAY = re.compile(r"arrays/([A-Za-z0-9_.\-]{1,200})\.npy")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    committed_seq: int
    """Every spool record below this is in InfluxDB, and ``state`` has seen exactly those."""
    state: Snapshot | None
    """None when the saved state cannot be used (the offset still can)."""


def save_checkpoint(directory: Path, committed_seq: int, state: Snapshot) -> None:
    """Atomically: write a temporary file, fsync it, rename it over the old one."""
    path = directory / CHECKPOINT_FILE
    temporary = path.with_suffix(".tmp")
    header = {"committed_seq": committed_seq, "written_by": __version__, "state": state.document}
    with temporary.open("wb") as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            archive.writestr(_DOCUMENT, orjson.dumps(header))
            for name, array in state.arrays.items():
                with archive.open(f"arrays/{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_checkpoint(directory: Path) -> Checkpoint | None:
    """The last checkpoint; None when there is none. Its state is None when it cannot be
    used, and its offset 0 (replay all the spool holds) when it cannot be read at all."""
    path = directory / CHECKPOINT_FILE
    if (directory / LEGACY_PICKLE).exists():
        log.warning(
            "%s is a pickle from an older ingest: not loaded (loading a pickle runs code);"
            " remove it once this version runs",
            directory / LEGACY_PICKLE,
        )
        if not path.exists():
            return Checkpoint(0, None)
    if not path.exists():
        return None
    try:
        committed_seq, state = read_checkpoint(path)
    except StateFileError as exc:
        # Replaying the whole spool is safe (writes are idempotent); guessing an offset is not.
        log.error(
            "CHECKPOINT REFUSED: %s is not a checkpoint this ingest can read (%s): replaying"
            " everything the spool still holds, open windows rebuilt from InfluxDB",
            path,
            exc,
        )
        return Checkpoint(0, None)
    return Checkpoint(committed_seq, state)


def read_checkpoint(path: Path) -> tuple[int, Snapshot]:
    """The offset and state in a checkpoint file; StateFileError for anything else."""
    try:
        size = path.stat().st_size
        if size > MAX_CHECKPOINT_BYTES:
            raise StateFileError(f"{size} bytes, more than {MAX_CHECKPOINT_BYTES}")
        with zipfile.ZipFile(path) as archive:
            return _read(archive, size)
    except StateFileError:
        raise
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise StateFileError(f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _read(archive: zipfile.ZipFile, size: int) -> tuple[int, Snapshot]:
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise StateFileError(f"{len(members)} members")
    if sum(m.file_size for m in members) > size:
        raise StateFileError("its members claim more bytes than the file holds")
    header: Any = None
    arrays: dict[str, npt.NDArray[Any]] = {}
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED:
            raise StateFileError(f"{member.filename!r} is compressed")
        if member.filename == _DOCUMENT:
            try:
                header = orjson.loads(archive.read(member))
            except orjson.JSONDecodeError as exc:
                raise StateFileError(f"{_DOCUMENT}: {exc}") from None
            continue
        match = _ARRAY.fullmatch(member.filename)
        if match is None or match[1] in arrays:
            raise StateFileError(f"unexpected member {member.filename[:200]!r}")
        arrays[match[1]] = _array(archive.read(member), match[1])
    if not isinstance(header, dict) or set(header) != {"committed_seq", "written_by", "state"}:
        raise StateFileError(f"{_DOCUMENT} is missing or not a checkpoint header")
    committed_seq, state = header["committed_seq"], header["state"]
    if type(committed_seq) is not int or committed_seq < 0:
        raise StateFileError(f"committed_seq {committed_seq!r} is not an offset")
    if not isinstance(state, dict):
        raise StateFileError("the state is not a document")
    return committed_seq, Snapshot(state, arrays)


def _array(data: bytes, name: str) -> npt.NDArray[Any]:
    """One .npy member, its header checked before its data is touched (no pickle, no objects)."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise StateFileError(f"array {name}: .npy version {version}")
    except (ValueError, SyntaxError, TypeError) as exc:
        raise StateFileError(f"array {name}: {str(exc)[:200]}") from None
    if dtype.hasobject or dtype.str not in ALLOWED_DTYPES:
        raise StateFileError(f"array {name}: type {dtype.str!r} is not allowed")
    if fortran:
        raise StateFileError(f"array {name}: Fortran order")
    body = data[stream.tell() :]
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(body):
        raise StateFileError(f"array {name}: shape {shape} needs {expected} bytes, has {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).copy()
