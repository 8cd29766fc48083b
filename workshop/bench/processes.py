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
from pathlib import Path

import requests

from workshop.lessons.stages import ROOT
from workshop.ports import TRACE_STORE, free_port, wait_for_http, wait_for_tcp

PYTHON = sys.executable


@dataclass
class StoreProcess:
    child: subprocess.Popen
    ports: dict[str, int]  # endpoint name (workshop.ports) -> port
    url: str

    @property
    def jaeger_compact_port(self) -> int:
        return self.ports["jaeger_compact"]

    @property
    def otlp_http_port(self) -> int:
        return self.ports["otlp_http"]


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], cwd: str | os.PathLike = ROOT) -> Iterator[subprocess.Popen]:
    child = subprocess.Popen(
        args, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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
def collector(max_traces: int = 10_000, journal: Path | None = None) -> Iterator[StoreProcess]:
    """`python -m workshop collector` on free ports (`journal`: it loads that file first)."""
    kinds = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
    ports = {endpoint.name: free_port(kinds[endpoint.protocol]) for endpoint in TRACE_STORE}
    args = [PYTHON, "-m", "workshop", "collector", "--max-traces", str(max_traces)]
    args += ["--journal", str(journal)] if journal is not None else []
    args += [word for endpoint in TRACE_STORE for word in (endpoint.flag, str(ports[endpoint.name]))]
    with process(args, {}) as child:
        url = f"http://127.0.0.1:{ports['query']}"
        wait_http(url + "/api/services")
        yield StoreProcess(child, ports, url)


def stats(url: str) -> dict:
    return requests.get(url + "/api/stats", timeout=10).json()
