"""`make stepN DOCKER=1` and `make down`: the same lessons with docker compose, real Jaeger v2 and Redis."""

from __future__ import annotations

import os
import subprocess

from rich.console import Console

from workshop.lessons.stages import ROOT, Stage
from workshop.ports import ENDPOINT
from workshop.runner.demo import DEMO_REPO, Demo

COMPOSE_TIMEOUT = 600  # seconds for `up --build --wait`: the first build downloads images


def docker_engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _no_engine(stage_name: str) -> int:
    print(f"No Docker engine answers here (`docker info` fails): run `make {stage_name}`, which needs no Docker.")
    return 1


def _compose(*args: str, timeout: float = COMPOSE_TIMEOUT) -> int:
    try:
        return subprocess.run(["docker", "compose", *args], cwd=ROOT, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"docker compose {' '.join(args)} did not finish within {timeout} s")
        return 1


def run_with_docker(stage: Stage, once: bool = False) -> int:
    if not docker_engine_answers():
        return _no_engine(stage.name)
    # the ports on this machine: docker-compose.yml publishes each on its variable, else its default
    app_port = ENDPOINT["edge" if stage.edge_process else "app"].port()  # lesson 9: learners call Traefik
    query_url = f"http://localhost:{ENDPOINT['query'].port()}"
    console = Console(highlight=False)
    console.print(
        f"[bold]docker compose --profile {stage.name} up --build[/bold] (waits until every service is healthy)"
    )
    if _compose("--profile", stage.name, "up", "--build", "--detach", "--wait") != 0:
        console.print("[red]docker compose could not start every service: see above, or `docker compose logs`[/red]")
        return 1
    services = set(stage.processes()) if stage.traced else set()
    repo = os.environ.get("DEMO_REPO", DEMO_REPO)
    demo = Demo(console, f"http://localhost:{app_port}", repo, query_url, services, trace_timeout=20)
    ok, trace_id = demo.run()
    if stage.traced and trace_id:
        console.print(f"\n  Jaeger UI, this trace: [bold]{query_url}/trace/{trace_id}[/bold]")
        console.print(f"  Jaeger UI, search:     {query_url}/search")
    console.print(f"  app: curl localhost:{app_port}/contributors/{repo}")
    if once:
        _compose("--profile", stage.name, "down")
    else:
        console.print("[bold]Running in Docker. Stop it with: make down[/bold]")
    return 0 if ok else 1


def down() -> int:
    if not docker_engine_answers():
        print("No Docker engine answers here (`docker info` fails): nothing to stop.")
        return 0
    return _compose("--profile", "*", "down", "--remove-orphans")
