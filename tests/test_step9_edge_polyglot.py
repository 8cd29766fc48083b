"""Lesson 9: Traefik in front, the github-proxy in Node.js, one trace across Go, Node.js and Python.

End to end over the real wire (Traefik's and Node's OTLP exporters, the Python SDK's) into a trace store
of the test's own, which the runner uses as it would a Jaeger already running."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.expected_trees import EXPECTED_TREES, canonical, json_tree
from tests.support.lesson9_tools import NODE_PROXY, STAGE, require_lesson9_tools
from tests.support.processes import run_workshop, runner_env, running_stage
from tests.support.stage_loader import ROOT
from workshop.lessons.checking import check
from workshop.lessons.exercises import fill, to_do
from workshop.lessons.mistakes import MISTAKES, scratch_copy
from workshop.lessons.stages import find_stage
from workshop.terminal.explain import neighbours
from workshop.terminal.query_client import QueryClient, trace_services
from workshop.tracestore.collector import CollectorConfig, running_collector
from workshop.tracestore.diagnosis import diagnose
from workshop.tracestore.model import TraceTree

SERVICES = {"traefik", "gateway", "github-proxy", "worker"}


@pytest.fixture
def store():
    require_lesson9_tools()
    with running_collector(CollectorConfig.on_free_ports()) as collector:
        yield collector


def store_env(collector) -> dict[str, str]:
    """The runner on free ports, using the test's store (it answers on the query port, so none is started)."""
    return runner_env(JAEGER_QUERY_PORT=str(collector.query_port), OTLP_HTTP_PORT=str(collector.otlp_http_port))


def tags(span: dict) -> dict:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def test_make_step9_once_gives_one_trace_from_traefik_through_node_to_the_worker(store):
    env = store_env(store)
    result = run_workshop("run", "step9", "--once", env=env, timeout=90)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert f"Demo request: GET http://127.0.0.1:{env['EDGE_PORT']}/contributors/" in result.stdout  # to Traefik
    trace_id = re.search(r"trace ([0-9a-f]{32})", result.stdout).group(1)
    trace = QueryClient(store.url).wait_for_trace(trace_id, SERVICES, timeout=10)
    assert trace is not None and trace_services(trace) == SERVICES

    # one root, Traefik's entry point span, and every other span under it: the tree workshop/lessons/expected.py says
    assert canonical(json_tree(trace)) == canonical(EXPECTED_TREES["step9_edge_polyglot"])  # siblings in any order
    (root,) = TraceTree(trace).roots
    gateway = root.children[0].children[0].children[0].children[0]
    (call,) = [child for child in gateway.children if child.span["operationName"] == "GET"]
    (node,) = call.children
    assert (node.service, node.span["operationName"]) == ("github-proxy", "GET /stats/:owner/:repo")
    process = {tag["key"]: tag["value"] for tag in trace["processes"][node.span["processID"]]["tags"]}
    assert process["telemetry.sdk.language"] == "nodejs"
    # The gateway's baggage, read in Node.js: OpenTelemetry Python writes the space as "+" (form encoding,
    # opentelemetry-python#2010); the W3C format, and OpenTelemetry JS, read "+" as a plus. The README says so.
    assert tags(node.span)["baggage.client"] == "make+demo"
    (work,) = node.children
    assert work.span["operationName"] == "get_repo_contributors" and len(work.children) == 3  # two 202s, then 200
    assert all(child.service == "github-proxy" and child.span["operationName"] == "GET" for child in work.children)
    (job,) = [child for child in gateway.children if child.span["operationName"] == "send_clean_job"]
    (handler,) = [child for child in job.children if child.service == "worker"]
    assert tags(handler.span)["baggage.client"] == "make demo"
    # the same trace, read by make check-step9's checker against lesson 9's tasks: every one done
    assert [result.problems for result in check("step9", {"demo": trace})] == [[], []]


def test_lesson_9_as_an_exercise_a_fresh_workspace_does_neither_task(store, tmp_path):
    """make check-step9 on a fresh workspace: Traefik does not trace (task 1: the gateway's span begins the
    trace), nor does the Node.js proxy (task 2); with task 1 done (the first task's work only), exactly task 2."""
    lesson = find_stage("step9")
    folder = tmp_path / lesson.folder.name
    fill(lesson, folder)
    fresh = run_workshop("check", "step9", "--folder", str(folder), "--json", env=store_env(store), timeout=90)
    said = json.loads(fresh.stdout)
    assert fresh.returncode == 1 and [r["done"] for r in said["results"]] == [False, False], said
    assert said["results"][0]["problems"] == [
        "gateway's GET /contributors/<owner>/<repo> begins the trace; it should be under traefik's ReverseProxy"
    ]
    assert said["results"][1]["problems"] == [
        "no span github-proxy's GET /stats/:owner/:repo in the trace: it belongs under gateway's GET "
        "(github-proxy has no span in this trace)"
    ]
    half = tmp_path / "half" / lesson.folder.name
    fill(lesson, half, undone=to_do(lesson)[1:])
    run = run_workshop("check", "step9", "--folder", str(half), "--json", env=store_env(store), timeout=90)
    assert [r["done"] for r in json.loads(run.stdout)["results"]] == [True, False], run.stdout


def test_lesson_9s_mistake_undoes_its_task_and_the_doctor_names_it(store, tmp_path):
    """The lesson's own code with traefik-speaks-b3: exactly task 1 fails, with the mistake named, and the trace
    doctor finds the hop that lost its context (what no run in memory can show: Traefik is a Go binary)."""
    lesson = find_stage("step9")
    with scratch_copy(lesson, MISTAKES["traefik-speaks-b3"]) as broken:
        run = run_workshop("check", "step9", "--folder", str(broken.folder), "--json", env=store_env(store), timeout=90)
    said = json.loads(run.stdout)
    assert [r["done"] for r in said["results"]] == [False, True], said
    assert said["results"][0]["mistakes"] == ["traefik-speaks-b3"]
    (finding,) = said["findings"]
    mistake = MISTAKES["traefik-speaks-b3"]
    assert (
        finding["kind"] == "lost_context"
        and "gateway's GET /contributors/<owner>/<repo> started a trace" in (finding["title"])
        and "into traefik's ReverseProxy" in finding["title"]
        and all(words in finding["title"] for words in mistake.names)
    )
    assert finding["lesson"] == "step9" and mistake.carrier in finding["carrier"]  # OTEL_PROPAGATORS, lesson 9


def test_node_missing_is_said_plainly(tmp_path):
    """A PATH without node: the runner names what to install, before starting anything."""
    for tool in ("sh", "git"):  # what a shell has; no node, no npm
        found = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if found:
            (tmp_path / tool).symlink_to(found)
    env = runner_env(PATH=str(tmp_path))
    result = run_workshop("run", "step9", "--once", env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "runs on Node.js and no `node` was found on PATH: install Node.js 20.6.0 or newer" in result.stderr
    assert "Traceback" not in result.stderr and "fake-github" not in result.stdout  # nothing was started


def test_the_readme_s_curl_goes_through_traefik_and_traefik_stopping_is_named(store):
    """... and the fake GitHub's error variants, through Traefik: the trace doctor finds nothing wrong with
    their traces (the proxy's GitHub timeout is 1 s here, so `slow` fails fast)."""
    with running_stage("step9", store_env(store) | {"GITHUB_TIMEOUT": "1"}) as (runner, output):
        port = edge(output)
        response = requests.get(
            f"http://localhost:{port}/contributors/pallets/flask?top=3", headers={"X-Client": "my laptop"}, timeout=15
        )
        assert response.status_code == 200 and len(response.json()["contributors"]) == 3  # top=3, via baggage
        # a request with a byte that is not UTF-8 in its path, among others: Traefik's exporter cannot encode
        # its span, and that must cost no other request's spans (traefik.sh: each span exported alone)
        bad = requests.get(f"http://localhost:{port}/contributors/pallets/%FF", timeout=15)
        assert bad.status_code < 500
        others = [requests.get(f"http://localhost:{port}/contributors/psf/requests", timeout=15) for _ in range(2)]
        for answer in [response, *others]:
            trace = QueryClient(store.url).wait_for_trace(answer.headers["X-Trace-Id"], SERVICES, timeout=15)
            assert trace is not None and len(TraceTree(trace).roots) == 1
            assert TraceTree(trace).roots[0].service == "traefik"
        client = QueryClient(store.url)
        variants = ("a/server-error", "a/does-not-exist", "a/rate-limited", "a/slow", "a/empty")
        with ThreadPoolExecutor(len(variants)) as pool:  # at once: the suite's time
            answers = pool.map(
                lambda repo: requests.get(f"http://localhost:{port}/contributors/{repo}", timeout=15), variants
            )
        for repo, answer in zip(variants, answers, strict=True):
            trace = client.wait_for_trace(answer.headers["X-Trace-Id"], SERVICES - {"worker"}, timeout=10)
            assert trace is not None and {"traefik", "gateway", "github-proxy"} <= trace_services(trace), repo
            found = diagnose(trace, neighbours(client, trace))
            assert found == [], (repo, answer.status_code, [finding.title for finding in found])
        assert store.statistics()["otlp_http"]["bad_requests"] == 0
        found = subprocess.run(
            ["pgrep", "-f", f"traefik --entryPoints.web.address=127.0.0.1:{port}"], capture_output=True, text=True
        ).stdout.split()
        assert found, "".join(output)
        for pid in found:
            os.kill(int(pid), signal.SIGKILL)
        rest, _ = runner.communicate(timeout=30)
    assert runner.returncode == 1
    assert "traefik (exit code -9) stopped on its own, so everything else was stopped too" in rest


def test_zipkin_and_b3_make_one_trace_and_lose_the_baggage(store):
    """The README's try next: OTEL_PROPAGATORS=b3multi OTEL_TRACES_EXPORTER=zipkin make step9."""
    env = store_env(store) | {
        "OTEL_PROPAGATORS": "b3multi",
        "OTEL_TRACES_EXPORTER": "zipkin",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT": f"http://localhost:{store.zipkin_port}/api/v2/spans",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # the Node SDK's own batches: every 0.2 s, not 5
    }
    with running_stage("step9", env) as (runner, output):
        response = requests.get(
            f"http://localhost:{edge(output)}/contributors/pallets/flask?top=3",
            headers={"X-Client": "my laptop"},
            timeout=15,
        )
        assert response.status_code == 200
        assert len(response.json()["contributors"]) > 3  # ?top=3 travelled as baggage, which B3 cannot carry
        trace = QueryClient(store.url).wait_for_trace(response.headers["X-Trace-Id"], SERVICES, timeout=10)
    assert trace is not None and trace_services(trace) == SERVICES
    assert len(TraceTree(trace).roots) == 1  # one trace, one root, across B3 hops
    proxy = [s for s in trace["spans"] if s["operationName"] == "GET /stats/:owner/:repo"]
    assert tags(proxy[0])["baggage.client"] == "-" and tags(proxy[0])["http.response.status_code"] == "200"
    assert store.statistics()["zipkin"]["spans"] >= 5  # the Node proxy's spans came as Zipkin JSON


def test_without_traefik_the_trace_starts_at_the_gateway(store):
    result = run_workshop("run", "step9", "--once", env=store_env(store) | {"WITHOUT": "traefik"}, timeout=90)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "not started: traefik (WITHOUT)" in result.stdout
    trace_id = re.search(r"trace ([0-9a-f]{32})", result.stdout).group(1)
    trace = QueryClient(store.url).wait_for_trace(trace_id, SERVICES - {"traefik"}, timeout=10)
    (root,) = TraceTree(trace).roots
    assert (root.service, root.span["operationName"]) == ("gateway", "GET /contributors/<owner>/<repo>")


def edge(output: list[str]) -> str:
    said = "".join(output)
    return re.search(r"the app \(through Traefik\):\s+curl http://127\.0\.0\.1:(\d+)/contributors/", said).group(1)


def test_the_node_proxy_s_own_tests_pass():
    """`node --test` in the proxy's folder: its spans, kept in memory (the README's command)."""
    require_lesson9_tools()
    result = subprocess.run(["node", "--test"], cwd=NODE_PROXY, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "# fail 0" in result.stdout and "# pass 3" in result.stdout


def test_the_procfile_runs_traefik_from_the_lesson_s_own_script():
    procfile = (ROOT / STAGE / "Procfile").read_text()
    assert "traefik: sh traefik.sh" in procfile and "github-proxy: node github-proxy/server.js" in procfile
    assert sys.platform != "win32"
