"""The processes a benchmark runs (the store, the fake GitHub, the lessons), each stopped when done."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import requests

from workshop.lessons.stages import ROOT
from workshop.ports import free_port, wait_for_http, wait_for_tcp

PYTHON = sys.executable
QUIET = {"PYTHONWARNINGS": "ignore:This package is no longer supported:DeprecationWarning", "PYTHONUNBUFFERED": "1"}


@dataclass
class StoreProcess:
    child: subprocess.Popen
    udp_port: int
    otlp_port: int
    url: str


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], cwd: str | os.PathLike = ROOT) -> Iterator[subprocess.Popen]:
    child = subprocess.Popen(
        args, cwd=cwd, env={**os.environ, **QUIET, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_http(url: str, timeout: float = 20) -> None:
    if not wait_for_http(url, time.monotonic() + timeout):
        raise RuntimeError(f"{url} did not answer within {timeout} s")


def wait_tcp(port: int, timeout: float = 20) -> None:
    if not wait_for_tcp("127.0.0.1", port, time.monotonic() + timeout):
        raise RuntimeError(f"port {port} did not open within {timeout} s")


@contextlib.contextmanager
def collector(max_traces: int = 10_000) -> Iterator[StoreProcess]:
    udp, http, otlp = free_port(socket.SOCK_DGRAM), free_port(), free_port()
    args = [PYTHON, "-m", "workshop", "collector", "--udp-port", str(udp), "--http-port", str(http)]
    args += ["--otlp-http-port", str(otlp), "--binary-udp-port", str(free_port(socket.SOCK_DGRAM))]
    args += ["--zipkin-port", str(free_port()), "--sampling-port", str(free_port())]
    with process(args + ["--max-traces", str(max_traces)], {}) as child:
        url = f"http://127.0.0.1:{http}"
        wait_http(url + "/api/services")
        yield StoreProcess(child, udp, otlp, url)


def stats(url: str) -> dict:
    return requests.get(url + "/api/stats", timeout=10).json()
