"""Capture what a real jaeger-client tracer sends over UDP."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

from jaeger_client import Config, Tracer


@contextlib.contextmanager
def udp_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    try:
        yield sock
    finally:
        sock.close()


def jaeger_tracer(service: str, port: int, queue_size: int = 100) -> Tracer:
    config = Config(
        config={
            "sampler": {"type": "const", "param": 1},
            "local_agent": {"reporting_host": "127.0.0.1", "reporting_port": port},
            "reporter_flush_interval": 0.05,
            "reporter_queue_size": queue_size,  # jaeger-client drops spans beyond it
            "logging": False,
        },
        service_name=service,
        validate=True,
    )
    return config.new_tracer()


def receive_all(sock: socket.socket, quiet_for: float = 0.5, limit: float = 5.0) -> list[bytes]:
    """Datagrams until none has come for `quiet_for` seconds."""
    datagrams: list[bytes] = []
    deadline = time.monotonic() + limit
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < quiet_for:
        try:
            datagrams.append(sock.recv(65535))
            last = time.monotonic()
        except TimeoutError:
            pass
    return datagrams


def close(tracer: Tracer) -> None:
    tracer.close()
    time.sleep(0.3)
