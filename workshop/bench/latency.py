"""Request latency of each traced stage against step 1, on the same fake GitHub."""

from __future__ import annotations

import contextlib
import statistics
import time

import requests

from workshop.bench.processes import PYTHON, collector, process, wait_http, wait_tcp
from workshop.lessons.stages import ROOT
from workshop.ports import free_port


def latency(requests_per_stage: int, github_latency: float = 0.0) -> dict[str, tuple[float, float]]:
    """p50 and p95 in ms for each stage's GET /contributors, against one fake GitHub and one store.

    The three stages run side by side and take turns, request by request, so whatever else the
    machine does at a moment slows all three alike.
    """
    stages = ["step1_monolith", "step2_spans", "step3_tags_logs"]
    github_port = free_port()
    fake = [PYTHON, "-m", "workshop", "fake-github", "--port", str(github_port), "--computing-calls", "0"]
    fake += ["--rate-limit", "100000000", "--latency", str(github_latency)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(fake, {}))
        udp = stack.enter_context(collector()).udp_port
        github = f"http://127.0.0.1:{github_port}"
        wait_http(github + "/")
        urls = {}
        for stage in stages:
            port = free_port()
            env = {"APP_PORT": str(port), "GITHUB_API_URL": github, "JAEGER_AGENT_PORT": str(udp)}
            stack.enter_context(process([PYTHON, "app.py"], env, cwd=ROOT / stage))
            urls[stage] = f"http://127.0.0.1:{port}/contributors/pallets/flask"
        sessions = {stage: requests.Session() for stage in stages}
        for stage in stages:
            wait_tcp(int(urls[stage].split(":")[2].split("/")[0]))
            for _ in range(30):  # warm up
                sessions[stage].get(urls[stage], timeout=10)
        times: dict[str, list[float]] = {stage: [] for stage in stages}
        for _ in range(requests_per_stage):
            for stage in stages:
                started = time.perf_counter()
                sessions[stage].get(urls[stage], timeout=10).raise_for_status()
                times[stage].append((time.perf_counter() - started) * 1000)
    return {stage: (statistics.median(t), statistics.quantiles(t, n=20)[18]) for stage, t in times.items()}
