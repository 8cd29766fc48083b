"""Ports: is one free, pick a free one, and say clearly which variable moves one that is taken."""

from __future__ import annotations

import socket
import time

from workshop.errors import WorkshopError


def port_in_use_message(port: int, variable: str) -> str:
    return f"port {port} is already in use: stop what uses it, or move this one with {variable}=<another port>"


def tcp_port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def udp_port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_free(host: str, port: int, variable: str) -> None:
    if not tcp_port_free(host, port):
        raise WorkshopError(port_in_use_message(port, variable))


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS says is free right now on 127.0.0.1 (TCP by default, or SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, deadline: float) -> bool:
    """Until `url` answers HTTP at all (any status), or `deadline` (time.monotonic()) passes."""
    import requests

    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return True
        except requests.RequestException:
            time.sleep(0.05)
    return False


def wait_for_tcp(host: str, port: int, deadline: float) -> bool:
    """Until host:port accepts a connection (without sending a request), or `deadline` passes."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False
