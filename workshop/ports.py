"""Ports: every port the workshop serves on, in one table (ENDPOINTS); is one free, pick a free one, and say
clearly which variable moves one that is taken. Standard library only: the doctor reads it before `make setup`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workshop.errors import WorkshopError

ROOT = Path(__file__).resolve().parent.parent

# Every port the workshop serves on or sends to: its name, the environment variable that moves it, its
# default, tcp or udp, and what it is. The CLI's flags (`--<name>-port`), the trace store's config fields
# (`<name>_port`) and `/api/stats` keys, the runner's settings, the doctor, the receivers page, the bench
# and the tests all read it. The README's "What runs, and on which port" says the same to learners.


@dataclass(frozen=True)
class Endpoint:
    name: str  # one name everywhere: flag --jaeger-compact-port, field jaeger_compact_port, stats key
    variable: str  # what moves it (learners and the README use these)
    default: int
    protocol: str  # "tcp" or "udp"
    label: str  # what it is, for a person
    trace_store: bool = False  # one of the trace store's (Jaeger's) ports

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-") + "-port"

    @property
    def field(self) -> str:
        return self.name + "_port"

    def port(self, environ: Mapping[str, str] | None = None) -> int:
        """The port the environment moves it to, else its default; a clear error for a value that is not one."""
        value = (os.environ if environ is None else environ).get(self.variable, "")
        if not value:
            return self.default
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise WorkshopError(f"{self.variable} must be a port number (1-65535), not {value!r}")
        return int(value)


ENDPOINTS = (
    Endpoint("app", "APP_PORT", 8480, "tcp", "the app (the gateway, from lesson 4)"),
    Endpoint("github_proxy", "PROXY_PORT", 8481, "tcp", "the github-proxy"),
    Endpoint("fake_github", "FAKE_GITHUB_PORT", 8482, "tcp", "the fake GitHub"),
    Endpoint("edge", "EDGE_PORT", 8483, "tcp", "Traefik, in front of the gateway"),
    Endpoint("redis", "REDIS_PORT", 6380, "tcp", "Redis"),  # not 6379: a Redis already running is left alone
    Endpoint("query", "JAEGER_QUERY_PORT", 16686, "tcp", "Jaeger's query API and the trace pages", True),
    Endpoint("jaeger_compact", "JAEGER_AGENT_PORT", 6831, "udp", "Jaeger compact Thrift", True),
    Endpoint("jaeger_binary", "JAEGER_BINARY_PORT", 6832, "udp", "Jaeger binary Thrift", True),
    Endpoint("otlp_http", "OTLP_HTTP_PORT", 4318, "tcp", "OTLP/HTTP", True),
    Endpoint("zipkin", "ZIPKIN_PORT", 9411, "tcp", "Zipkin v2 JSON", True),
    Endpoint("sampling", "JAEGER_SAMPLING_PORT", 5778, "tcp", "remote sampling", True),
)
ENDPOINT = {endpoint.name: endpoint for endpoint in ENDPOINTS}
TRACE_STORE = tuple(endpoint for endpoint in ENDPOINTS if endpoint.trace_store)


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


@dataclass
class PortCheck:
    """Every port a run needs, checked before anything starts; all the taken ones are named at once,
    with what holds them when the system says (psutil), and a hint when it is another run of ours."""

    host: str
    command: str = "make step3"  # how the run was started: the command it suggests again, ports moved
    taken: list[str] = field(default_factory=list)
    holders: dict[int, str] = field(default_factory=dict)  # pid -> its command line
    moves: dict[str, int] = field(default_factory=dict)  # variable -> a port to try instead

    def tcp(self, port: int, variable: str) -> None:
        if not tcp_port_free(self.host, port):
            self._taken(port, "tcp", f"port {port} is already in use ({variable})")
            self.moves[variable] = _elsewhere(self.host, port, tcp_port_free)

    def udp(self, port: int, variable: str, why: str = "") -> None:
        if not udp_port_free(self.host, port):
            self._taken(port, "udp", f"UDP port {port} is in use ({variable}){why}")
            self.moves[variable] = _elsewhere(self.host, port, udp_port_free)

    def _taken(self, port: int, kind: str, line: str) -> None:
        held = holders(port, kind)
        self.holders.update(held)
        self.taken.append(line + (": " + ", ".join(f"pid {p} {c}" for p, c in held.items()) if held else ""))

    def raise_if_any(self) -> None:
        if not self.taken:
            return
        lines = self.taken[:]
        ours = {pid: command for pid, command in self.holders.items() if _ours(pid)}
        if ours:
            runs = sorted({run_of(pid) for pid in ours} - {None})
            lines.append(
                "another `make stepN` is still running"
                + (f" (pid {', '.join(map(str, runs))})" if runs else "")
                + f": Ctrl-C in its terminal, or `kill {' '.join(map(str, sorted(runs or ours)))}`"
            )
        moves = " ".join(f"{variable}={port}" for variable, port in self.moves.items())
        lines.append(f"or move them: {moves} {self.command}")
        raise WorkshopError("\n".join(lines))


def _elsewhere(host: str, port: int, free) -> int:
    """A free port near `port` (1000 up, then on): what to suggest instead of it."""
    for candidate in range(port + 1000, min(port + 1100, 65536)):
        if free(host, candidate):
            return candidate
    return port + 1000


def holders(port: int, kind: str) -> dict[int, str]:
    """The processes listening on `port` (TCP) or bound to it (UDP), if the system tells: pid -> command.
    psutil when it is installed (and allowed to look), else lsof when it is on PATH (macOS has it)."""
    try:
        import psutil

        connections = psutil.net_connections(kind=kind)
    except Exception:  # no psutil, or not allowed to look
        return _lsof_holders(port, kind)
    pids = {
        c.pid
        for c in connections
        if c.pid and c.laddr and c.laddr.port == port and (kind == "udp" or c.status == psutil.CONN_LISTEN)
    }
    found = {}
    for pid in sorted(pids):
        try:
            command = psutil.Process(pid).cmdline()
            words = " ".join([Path(command[0]).name, *command[1:]]).split()  # one line, even for `python -c '...'`
            found[pid] = "(" + " ".join(words)[:50] + ")" if command else ""
        except psutil.Error:
            found[pid] = ""
    return found


def _lsof_holders(port: int, kind: str) -> dict[int, str]:
    lsof = shutil.which("lsof")
    if lsof is None:
        return {}
    selector = [f"-iTCP:{port}", "-sTCP:LISTEN"] if kind == "tcp" else [f"-iUDP:{port}"]
    try:
        output = subprocess.run([lsof, "-nP", *selector, "-Fpc"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found, pid = {}, None
    for line in output.splitlines():
        if line.startswith("p") and line[1:].isdigit():
            pid = int(line[1:])
            found[pid] = ""
        elif line.startswith("c") and pid is not None:
            found[pid] = f"({line[1:]})"
    return found


def _ours(pid: int) -> bool:
    """Started by this workshop: its command or its folder is this repository's."""
    try:
        import psutil

        process = psutil.Process(pid)
        return "workshop" in " ".join(process.cmdline()) or Path(process.cwd()).is_relative_to(ROOT)
    except Exception:
        return False


def run_of(pid: int) -> int | None:
    """The `python -m workshop run` that started `pid`, if any."""
    try:
        import psutil

        runs = [p.pid for p in psutil.Process(pid).parents() if "workshop run" in " ".join(p.cmdline())]
    except Exception:
        return None
    runs = [run for run in runs if run != os.getpid()]
    return runs[-1] if runs else None  # the outermost: honcho's own forks of it are between


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
