"""Run stage processes and the runner as real processes on free ports, and clean up after them."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.stage_loader import ROOT
from workshop.lessons.environment import lesson_environment
from workshop.ports import ENDPOINTS, tcp_port_free, udp_port_free, wait_for_http


def wait_http(url: str, timeout: float = 15) -> None:
    if not wait_for_http(url, time.monotonic() + timeout):
        raise TimeoutError(f"{url} did not answer within {timeout} s")


@dataclass
class StageProcesses:
    processes: dict[str, subprocess.Popen]
    url: str
    proxy_url: str = ""  # the github-proxy's, in the lessons that have one

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[dict[str, int], str]:
        """Signal every process, wait (bounded), and return their exit codes and their output."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(sig)
        codes, output = {}, []
        for name, process in self.processes.items():
            out, _ = process.communicate(timeout=timeout)
            codes[name] = process.returncode
            output.append(out)
        return codes, "".join(output)


@contextlib.contextmanager
def stage_processes(
    folder: str,
    github: str,
    store_ports: Mapping[str, int],
    redis_url: str | None = None,
    only: set[str] | None = None,
    **extra: str,
) -> Iterator[StageProcesses]:
    """Every process of a stage's Procfile (each `python <script>`; `only` these, if given), on free ports,
    with the environment the runner gives them (sending spans to the store's ports: endpoint name -> port),
    and `extra` on top; yields the app's URL."""
    from workshop.lessons.stages import read_procfile

    app_port, proxy_port = distinct_free_ports(2)  # not from the ephemeral range: nothing takes them meanwhile
    ports = {**store_ports, "app": app_port, "github_proxy": proxy_port}
    full_env = {**os.environ, **lesson_environment(ports, github, redis_url=redis_url), **extra}
    processes = {}
    try:
        for name, command in read_procfile(ROOT / folder / "Procfile").items():
            if only is not None and name not in only:
                continue
            program, script = command.split()
            assert program == "python", command
            processes[name] = subprocess.Popen(
                [sys.executable, script],
                cwd=ROOT / folder,
                env=full_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        if "gateway" in processes or only is None:
            wait_http(f"http://127.0.0.1:{app_port}/")
        if "github-proxy" in processes:
            wait_http(f"http://127.0.0.1:{proxy_port}/")
        if "worker" in processes:
            wait_for_worker(full_env["REDIS_URL"])
        exited = {name: process.returncode for name, process in processes.items() if process.poll() is not None}
        if exited:  # another checkout's process took the port between the pick and the start: not ours answered
            raise RuntimeError(f"{folder}: {exited} exited on start: {processes[next(iter(exited))].stdout.read()}")
        yield StageProcesses(processes, f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{proxy_port}")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)


def wait_for_worker(redis_url: str, timeout: float = 15) -> None:
    """Until a worker waits for jobs (Redis lists a client blocked in BRPOP): it has started, and its
    signal handlers are in place."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    deadline = time.monotonic() + timeout
    while not any(c.get("cmd") == "brpop" for c in client.client_list()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no worker waited for jobs at {redis_url} within {timeout} s")
        time.sleep(0.05)


_picked = itertools.count(os.getpid() % 1_000)  # not where another test session (another checkout) starts
_held: dict[int, int] = {}  # port -> the open lock file that reserves it for this process, until it exits
PORT_LOCKS = Path(tempfile.gettempdir()) / "workshop-test-ports"


def distinct_free_ports(count: int, kind: int = socket.SOCK_STREAM) -> list[int]:
    """`count` free ports, different from each other, for processes a test starts with fixed ports.

    They come from below the OS's ephemeral range (where every `port 0` server of the suite lands), from
    a block of 1,000 of this xdist worker's own, and each is reserved for this process (a lock file that it
    holds until it exits): another clone's suite on the same machine, whose workers have the same numbers,
    skips it. So no other test, here, in a parallel worker or in another clone, takes one between the pick
    and its use."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = 20_000 + (int(worker) % 10 if worker.isdigit() else 0) * 1_000
    free = tcp_port_free if kind == socket.SOCK_STREAM else udp_port_free
    ports: list[int] = []
    for _ in range(1_000):
        port = base + next(_picked) % 1_000
        if port not in ports and _reserve(port) and free("127.0.0.1", port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"no {count} free ports in {base}-{base + 999} (others are reserved in {PORT_LOCKS})")


def _reserve(port: int) -> bool:
    """Whether this process holds `port`'s lock (taking it now if no other process holds it)."""
    if port in _held:
        return True
    PORT_LOCKS.mkdir(exist_ok=True)
    fd = os.open(PORT_LOCKS / str(port), os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held[port] = fd
    return True


def runner_env(**extra: str) -> dict[str, str]:
    """Environment for `python -m workshop run` with every port free, so tests never collide."""
    ignored = ("GITHUB_API_URL", "REDIS_URL", "GITHUB_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT")
    env = {k: v for k, v in os.environ.items() if k not in ignored}
    for protocol, kind in (("tcp", socket.SOCK_STREAM), ("udp", socket.SOCK_DGRAM)):
        variables = [endpoint.variable for endpoint in ENDPOINTS if endpoint.protocol == protocol]
        env.update(zip(variables, map(str, distinct_free_ports(len(variables), kind)), strict=True))
    env.update(PYTHONUNBUFFERED="1", COLUMNS="120")
    env[RUN_MARKER] = uuid.uuid4().hex
    env.update(extra)
    return env


def run_workshop(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workshop", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


RUN_MARKER = "WORKSHOP_TEST_RUN"  # in the environment of every process a test's runner starts (runner_env)


def processes_started_with(env: Mapping[str, str]) -> list[str]:
    """The processes still running (zombies too) that were started with this environment, told apart by the
    marker `runner_env` put in it: only the test's own, never another test's or another clone's that happen
    to use the same ports. ("pid state command line", from /proc: Linux.)"""
    if not sys.platform.startswith("linux"):
        pytest.skip("finds a test's own processes by their environment, in /proc (Linux)")
    marker = f"{RUN_MARKER}={env[RUN_MARKER]}".encode()
    found, marked = [], set()
    entries = [entry for entry in Path("/proc").iterdir() if entry.name.isdigit() and entry.name != str(os.getpid())]
    stats = {}
    for entry in entries:
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        stats[entry.name] = (stat, command)
        if marker in environ:
            marked.add(entry.name)
    for pid, (stat, command) in stats.items():
        state, parent = stat[0], stat[1]
        if pid in marked or (state == "Z" and parent in marked):  # a zombie has no environment left
            found.append(f"{pid} {state} {command}")
    return found


def wait_until_gone(env: Mapping[str, str], timeout: float = 60) -> list[str]:
    """Until none of the processes started with `env` runs (or the timeout): those still left."""
    deadline = time.monotonic() + timeout
    while (left := processes_started_with(env)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def run_stage_folder(folder, number: int, once: bool = True, settings: str = "") -> subprocess.CompletedProcess:
    """`make stepN` (the runner) on a stage folder of the test's own, such as an edited copy of a lesson.
    `settings`: the runner's Settings(...) arguments, as Python source."""
    driver = (
        "import sys; from pathlib import Path\n"
        "from workshop.runner.run import Settings, run_stage\n"
        "from workshop.lessons.stages import Stage\n"
        f"sys.exit(run_stage(Stage({number}, Path({str(folder)!r})), once={once}, settings=Settings({settings})))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", driver], cwd=ROOT, env=runner_env(), capture_output=True, text=True, timeout=60
    )


@contextlib.contextmanager
def running_stage(stage: str, env: dict[str, str], *flags: str) -> Iterator[tuple[subprocess.Popen, list[str]]]:
    """`make stepN` left running, as a learner leaves it: yields the runner and what it printed until it
    said "Press Ctrl-C"; stopped with Ctrl-C at the end if the test did not stop it. `flags`: the run's."""
    runner = subprocess.Popen(
        [sys.executable, "-m", "workshop", "run", stage, *flags],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 30
        for line in runner.stdout:
            output.append(line)
            if "Press Ctrl-C" in line or time.monotonic() > deadline:
                break
        if not any("Press Ctrl-C" in line for line in output):
            code = runner.poll() if runner.poll() is not None else "none yet: still running"
            raise AssertionError(f"no 'Press Ctrl-C' (the runner's exit code: {code}); it printed:\n" + "".join(output))
        yield runner, output
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGINT)
            try:
                runner.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.communicate(timeout=10)
