"""Loopback ports: a free one to start a server on, and whether something answers on one."""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    """A TCP port nothing listens on now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            # with nothing listening on a port of the ephemeral range, the kernel can give the
            # connection that same port as its own, and it then connects to itself
            return connection.getsockname() != connection.getpeername()
    except OSError:
        return False


def wait_until_answers(host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not answers(host, port, timeout=0.5):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answers on {host}:{port}")
        time.sleep(0.1)
