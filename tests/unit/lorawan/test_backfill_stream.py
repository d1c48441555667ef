"""What a hostile Storage Integration answer can do to ``lorawan backfill``: stop it with a
reason, never fill its memory. The server is a real local HTTP server (TTS cannot run here)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from smartplace.config import Settings
from smartplace.lorawan.backfill import MAX_LINE_BYTES, BackfillError, backfill, stored_uplinks

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


@pytest.fixture
def answer() -> Iterator[tuple[str, list[tuple[int, bytes]]]]:
    """A server that answers each GET with the next (status, body) the test queued."""
    queued: list[tuple[int, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = queued.pop(0)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", queued
    server.shutdown()
    server.server_close()


def test_what_the_server_says_reaches_the_terminal_escaped(
    answer: tuple[str, list[tuple[int, bytes]]],
) -> None:
    url, queued = answer
    queued.append((500, b"\x1b]0;pwned\x07 oops"))
    queued.append((200, b'{"error": "\\u001b[2J"}\n'))
    since = datetime(2024, 1, 1, tzinfo=UTC)
    where = f"{url}/api/v3/as/applications/app1/packages/storage/uplink_message"
    with pytest.raises(BackfillError) as status:
        list(stored_uplinks(url, "app1@ttn", "NNSXS.KEY", since))
    assert str(status.value) == f"{where}: HTTP 500: '\\x1b]0;pwned\\x07 oops'"
    with pytest.raises(BackfillError) as ended:
        list(stored_uplinks(url, "app1@ttn", "NNSXS.KEY", since))
    assert str(ended.value) == f"{where}: the stream ended with '\\x1b[2J'"


@pytest.mark.parametrize("key", ["", "NNSXS.clé", "NNSXS.A\nB", "NNSXS.A B"])
def test_an_api_key_that_is_not_one_ascii_word_is_refused_before_anything_is_sent(
    tmp_path: Path, key: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(key)
    since = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(BackfillError) as refused:
        backfill(Settings(), "http://127.0.0.1:1", "app1@ttn", key_file, since)
    assert str(refused.value) == (
        f"API key file {key_file}: expected one key, on one line, of ASCII letters and signs"
    )


def test_a_line_that_is_no_stored_uplink_is_counted_not_dropped(
    answer: tuple[str, list[tuple[int, bytes]]],
) -> None:
    url, queued = answer
    up = {"end_device_ids": {"device_id": "d1"}, "uplink_message": {"f_cnt": 3}}
    queued.append((200, b'{"result": 5}\n[1, 2]\nnull\n{"other": 1}\n{"result": {"f_cnt": 3}}\n'))
    queued[0] = (200, queued[0][1] + b'{"result": {"end_device_ids": {"device_id": "d1"}, ')
    queued[0] = (200, queued[0][1] + b'"uplink_message": {"f_cnt": 3}}}\n')
    since = datetime(2024, 1, 1, tzinfo=UTC)
    # each line is one item: the backfill counts the Nones as skipped, the dicts it checks
    assert list(stored_uplinks(url, "app1@ttn", "NNSXS.KEY", since)) == [
        None,
        None,
        None,
        None,
        {"f_cnt": 3},
        up,
    ]


def test_event_stream_lines_without_data_are_passed_over_and_a_bad_line_is_only_skipped(
    answer: tuple[str, list[tuple[int, bytes]]],
) -> None:
    """A keep-alive comment or an event name used to end the backfill ("not JSON"), leaving
    everything after it unfilled."""
    url, queued = answer
    good = b'data: {"result": {"uplink_message": {"f_cnt": 4}}}\n'
    stream = b": keep-alive\nevent: message\nid: 7\nretry: 1000\n" + good + b"data: {oops\n" + good
    queued.append((200, stream))
    since = datetime(2024, 1, 1, tzinfo=UTC)
    assert list(stored_uplinks(url, "app1@ttn", "NNSXS.KEY", since)) == [
        {"uplink_message": {"f_cnt": 4}},
        None,
        {"uplink_message": {"f_cnt": 4}},
    ]
