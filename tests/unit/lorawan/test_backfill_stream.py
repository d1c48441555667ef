"""What a hostile Storage Integration answer can do to ``lorawan backfill``: stop it with a
reason, never fill its memory. The server is a real local HTTP server (TTS cannot run here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smartplace.lorawan.backfill import MAX_LINE_BYTES, BackfillError, stored_uplinks

SENT_BYTES = 64 * MAX_LINE_BYTES
"""What the hostile server offers: one line, no newline, far past any stored uplink."""


@pytest.fixture
def endless_line() -> Iterator[tuple[str, list[int]]]:
    sent = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while sent[0] < SENT_BYTES:
                    self.wfile.write(chunk)
                    sent[0] += len(chunk)
            except OSError:
                pass  # the client hung up: what this test wants

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", sent
    server.shutdown()
    server.server_close()


def test_a_line_without_end_stops_the_backfill_before_it_is_read_whole(
    endless_line: tuple[str, list[int]],
) -> None:
    url, sent = endless_line
    since = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(BackfillError, match=r"a line of more than 1048576 bytes is no stored"):
        list(stored_uplinks(url, "app1@ttn", "NNSXS.KEY", since))
    # The client stopped reading within a few socket buffers of the limit, not at the end.
    assert sent[0] < 8 * MAX_LINE_BYTES
