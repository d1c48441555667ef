"""Writing a batch so that what InfluxDB refuses costs only itself.

InfluxDB answers 400 for a batch holding a line it will never take (a
field whose type conflicts with what the shard stores, say). Retrying cannot
help, and dropping the batch would lose every good line with it, so the batch
is split in halves until each refused line stands alone: k bad lines in n cost
about k * log2(n) requests. Everything else is written (1.x keeps a partial
write's good points, and writing them again is harmless: same series, same
time). Other failures propagate for the caller's retry loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from smartplace.errors import InfluxError


def write_isolating_refusals(
    write: Callable[[Sequence[str]], object], lines: Sequence[str], start: int = 0
) -> list[tuple[int, str]]:
    """Write ``lines``; returns the place of each line InfluxDB refused, with its reason."""
    if not lines:
        return []
    try:
        write(lines)
    except InfluxError as exc:
        if exc.status_code != 400:
            raise
        if len(lines) == 1:
            return [(start, str(exc))]
        middle = len(lines) // 2
        return write_isolating_refusals(write, lines[:middle], start) + write_isolating_refusals(
            write, lines[middle:], start + middle
        )
    return []
