"""Picking ports for servers the tests and the bench start."""

from __future__ import annotations

import socket

from smartplace.stack import free_port, free_port_block
from smartplace.stack.process import _ephemeral_range


def test_a_port_block_is_free_consecutive_and_outside_the_ephemeral_range() -> None:
    low, high = _ephemeral_range()
    for count in (1, 2, 4):
        start = free_port_block(count)
        ports = range(start, start + count)
        assert all(port < low or port > high for port in ports)
        sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in ports]
        try:
            for sock, port in zip(sockets, ports, strict=True):
                sock.bind(("127.0.0.1", port))  # raises if one was taken
        finally:
            for sock in sockets:
                sock.close()


def test_a_free_port_for_a_server_is_outside_the_ephemeral_range_too() -> None:
    low, high = _ephemeral_range()
    ports = [free_port() for _ in range(1000)]
    assert all(port < low or port > high for port in ports)
    assert len(set(ports)) == len(ports)  # none handed out twice before its server binds it
