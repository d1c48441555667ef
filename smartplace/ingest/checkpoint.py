"""The committed offset, saved with the pipeline's open windows as of that offset.

After a crash, ingest loads the checkpoint and replays the spool from its
offset: the windows come back exactly as they were, and the records after
the offset are processed again. Their points were perhaps written already;
writing them again is harmless, because a point is keyed by series and time.

The state is pickled: it is the process's own numpy arrays and dicts, in a
directory only the service can write (0700), read back by the same version.
A checkpoint from another version is not trusted to fit: ingest then starts
with empty windows from the committed offset and says so.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartplace import __version__

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pickle"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    committed_seq: int
    """Every spool record below this is in InfluxDB, and ``state`` has seen exactly those."""
    state: Any
    version: str = __version__


def save_checkpoint(directory: Path, checkpoint: Checkpoint) -> None:
    """Atomically: write a temporary file, fsync it, rename it over the old one."""
    path = directory / CHECKPOINT_FILE
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as handle:
        pickle.dump(checkpoint, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_checkpoint(directory: Path) -> Checkpoint | None:
    """The last checkpoint; None when there is none. Its state is None when it cannot be used,
    and its offset 0 (replay all the spool holds) when it cannot be read at all."""
    path = directory / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        with path.open("rb") as handle:
            checkpoint = pickle.load(handle)  # noqa: S301 - our own file in our own 0700 directory
    except Exception as exc:
        checkpoint = None
        problem = str(exc)
    else:
        problem = "" if isinstance(checkpoint, Checkpoint) else "it holds no checkpoint"
    if problem or not isinstance(checkpoint, Checkpoint):
        # Replaying the whole spool is safe (writes are idempotent); guessing an offset is not.
        log.error(
            "checkpoint %s is unreadable (%s): replaying everything the spool still holds",
            path,
            problem,
        )
        return Checkpoint(0, None)
    if checkpoint.version != __version__:
        log.warning(
            "checkpoint written by smartplace %s, this is %s: open windows start afresh from"
            " spool record %d (their aggregates may miss what came before it)",
            checkpoint.version,
            __version__,
            checkpoint.committed_seq,
        )
        return Checkpoint(checkpoint.committed_seq, None)
    return checkpoint
