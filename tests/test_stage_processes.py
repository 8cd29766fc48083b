"""End to end over the real wire: stage process -> jaeger-client UDP (lessons 2-6) or OTLP/HTTP (lessons 7 on)
-> trace store -> Jaeger's HTTP API."""

from __future__ import annotations

import json
import signal
import time

import pytest
import redis
import requests

from tests.conftest import TOKEN, redis_server, session_redis_url
from tests.support.expected_trees import EXPECTED_TREES, SERVICES, canonical, json_tags, json_tree
from tests.support.processes import distinct_free_ports, stage_processes
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.lessons.stages import all_stages
from workshop.ports import free_port
from workshop.serving import serve_in_thread
from workshop.terminal.query_client import QueryClient, trace_services
from workshop.tracestore.collector import CollectorConfig, running_collector

# every traced lesson whose processes are all Python (lesson 9's Traefik and Node.js: tests/test_step9_*)
TRACED = [s.folder.name for s in all_stages() if s.traced and not s.edge_process and s.node_project is None]


@pytest.fixture
def world():
    """A fake GitHub and a trace store, both on free ports."""
    with (
        serve_in_thread(create_app(FakeGitHubConfig(computing_calls=2))) as github,
        running_collector(CollectorConfig.on_free_ports()) as store,
    ):
        yield github, store


def stage_env(github: str, store, **extra: str) -> dict:
    """stage_processes' arguments: this fake GitHub, this store, and the session's Redis (emptied)."""
    redis_url = session_redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    return {"github": github, "store_ports": store.ports, "redis_url": redis_url, **extra}


@pytest.mark.parametrize("stage", TRACED)
def test_trace_arrives_over_the_wire_with_the_same_tree_and_the_last_is_flushed_when_stopped(world, stage):
    """The demo's trace, whole; then SIGTERM right after another answer (lesson 2: Ctrl-C's SIGINT): the spans
    still queued in the tracer are sent before exit. (One start of the lesson's processes for both.)"""
    github, store = world
    client = QueryClient(store.url)
    with stage_processes(stage, **stage_env(github, store)) as app:
        response = requests.get(app.url + "/contributors/pallets/flask", timeout=15)
        assert response.status_code == 200
        trace = client.wait_for_trace(response.headers["X-Trace-Id"], SERVICES[stage], timeout=10)
        last = requests.get(app.url + "/contributors/octocat/does-not-exist", timeout=15)
        codes, output = app.stop(signal.SIGINT if stage == "step2_spans" else signal.SIGTERM, timeout=30)
    assert trace is not None
    assert canonical(json_tree(trace)) == canonical(EXPECTED_TREES[stage])
    assert trace_services(trace) == SERVICES[stage]
    assert trace["traceID"] == response.headers["X-Trace-Id"]

    assert set(codes.values()) == {0}, output
    flushed = client.wait_for_trace(last.headers["X-Trace-Id"], SERVICES[stage], timeout=5)
    assert flushed is not None and json_tree(flushed)[2], "the trace lost its spans"
    assert len(flushed["spans"]) == {"step2_spans": 3, "step3_tags_logs": 3, "step8_opentelemetry": 5}.get(stage, 5)


def test_step3_tags_logs_and_log_lines_survive_the_wire_and_never_the_token(world):
    github, store = world
    with stage_processes("step3_tags_logs", **stage_env(github, store, GITHUB_TOKEN=TOKEN)) as app:
        response = requests.get(app.url + "/contributors/pallets/flask", timeout=15)
        trace = QueryClient(store.url).wait_for_trace(response.headers["X-Trace-Id"], {"contributors"}, timeout=10)
        _, output = app.stop()
    spans = {}
    for span in trace["spans"]:
        spans.setdefault(span["operationName"], []).append(span)
    attempt = json_tags(spans["github_request"][2])
    assert attempt["span.kind"] == "client" and attempt["peer.service"] == "github"
    assert attempt["http.status_code"] == 200 and attempt["github.attempt"] == 3
    assert json_tags(spans["clean_github_data"][0])["contributors.count"] == len(response.json()["contributors"])
    retry_logs = spans["get_repo_contributors"][0]["logs"]
    assert [{f["key"]: f["value"] for f in log["fields"]}["event"] for log in retry_logs] == ["retry", "retry"]

    # the log lines name the trace and the span they were written in
    get_span = spans["get_repo_contributors"][0]
    retry_lines = [line for line in output.splitlines() if "retrying" in line]
    assert len(retry_lines) == 2
    for line in retry_lines:
        assert f"[trace={trace['traceID']} span={get_span['spanID']}]" in line
    root = next(s for s in trace["spans"] if not s["references"])
    (access,) = [line for line in output.splitlines() if '"GET /contributors/pallets/flask HTTP/1.1" 200' in line]
    assert f"[trace={trace['traceID']} span={root['spanID']}]" in access  # werkzeug's line, after the span
    assert TOKEN not in output
    assert TOKEN not in json.dumps(trace)


@pytest.mark.parametrize("stage", TRACED)
def test_app_serves_with_no_trace_store(stage):
    with serve_in_thread(create_app(FakeGitHubConfig(computing_calls=0))) as github:
        nobody = {"jaeger_compact": free_port(kind=2), "otlp_http": free_port()}
        with stage_processes(stage, github, nobody, session_redis_url()) as app:
            for _ in range(3):
                assert requests.get(app.url + "/contributors/pallets/flask", timeout=15).status_code == 200
            codes, output = app.stop()
    assert set(codes.values()) == {0}, output


def test_worker_finishes_its_job_and_flushes_on_sigterm(world):
    """SIGTERM while a job is on its way: the worker answers it, sends its spans, and exits 0."""
    github, store = world
    with stage_processes("step5_queue", **stage_env(github, store)) as app:
        response = requests.get(app.url + "/contributors/pallets/click", timeout=20)
        assert response.status_code == 200
        worker = app.processes["worker"]
        client = redis.Redis.from_url(session_redis_url(), socket_timeout=5)
        job = {"job_id": "last", "reply_to": "contributors:reply:last", "stats": [], "trace": {}}
        client.lpush("contributors:jobs", json.dumps(job))
        worker.send_signal(signal.SIGTERM)
        reply = client.brpop(["contributors:reply:last"], timeout=5)
        output, _ = worker.communicate(timeout=10)
        app.stop()
    assert reply is not None and json.loads(reply[1]) == {"contributors": []}
    assert worker.returncode == 0, output
    trace = QueryClient(store.url).wait_for_trace(response.headers["X-Trace-Id"], SERVICES["step5_queue"], timeout=5)
    assert trace is not None and "worker" in trace_services(trace)


def test_redis_down_is_503_and_everything_recovers_when_it_is_back(world):
    github, store = world
    port = distinct_free_ports(1)[0]  # its second Redis comes back on the same port
    first = redis_server(port)
    redis_url = first.__enter__()
    try:
        with stage_processes("step5_queue", **stage_env(github, store, redis_url=redis_url)) as app:
            assert requests.get(app.url + "/contributors/a/b", timeout=20).status_code == 200
            first.__exit__(None, None, None)  # Redis stops
            started = time.monotonic()
            response = requests.get(app.url + "/contributors/a/b", timeout=20)
            assert response.status_code == 503
            assert response.json()["error"].startswith(f"the job queue is down: Redis at {redis_url}")
            assert time.monotonic() - started < 10
            with redis_server(port):  # Redis is back, on the same port
                deadline = time.monotonic() + 15
                while requests.get(app.url + "/contributors/a/b", timeout=20).status_code != 200:
                    assert time.monotonic() < deadline, "the gateway and the worker did not recover"
                    time.sleep(0.2)
                _, output = app.stop()
    finally:
        first.__exit__(None, None, None)
    assert "cannot take jobs from Redis" in output  # the worker noticed, and kept trying


def test_baggage_reaches_every_service_over_the_wire(world):
    github, store = world
    with stage_processes("step6_baggage", **stage_env(github, store)) as app:
        response = requests.get(app.url + "/contributors/pallets/flask?top=2", headers={"X-Client": "e2e"}, timeout=20)
        trace = QueryClient(store.url).wait_for_trace(response.headers["X-Trace-Id"], SERVICES["step6_baggage"], 10)
        app.stop()
    assert len(response.json()["contributors"]) == 2
    by_operation = {span["operationName"]: span for span in trace["spans"]}
    root_logs = [{f["key"]: f["value"] for f in log["fields"]} for log in by_operation["contributors"]["logs"]]
    assert {"event": "baggage", "key": "client", "value": "e2e"} in root_logs
    assert json_tags(by_operation["stats"])["baggage.client"] == "e2e"
    handled = json_tags(by_operation["handle_clean_job"])
    assert handled["baggage.client"] == "e2e" and handled["baggage.contributors.top"] == 2


def test_lesson_6_s_worker_joins_lesson_8_s_trace(world):
    """A migration goes one service at a time: lesson 8's gateway and proxy (OpenTelemetry, OTLP) with
    lesson 6's worker (jaeger-client, UDP) still in place. Jaeger's headers in the job join them."""
    github, store = world
    env = stage_env(github, store)
    with (
        stage_processes("step8_opentelemetry", **env, only={"gateway", "github-proxy"}) as app,
        stage_processes("step6_baggage", **env, only={"worker"}),
    ):
        response = requests.get(app.url + "/contributors/pallets/flask?top=2", headers={"X-Client": "ci"}, timeout=15)
        assert response.status_code == 200 and len(response.json()["contributors"]) == 2  # baggage read in the job
        trace = QueryClient(store.url).wait_for_trace(
            response.headers["X-Trace-Id"], SERVICES["step8_opentelemetry"], timeout=10
        )
    assert trace is not None
    tree = json_tree(trace)
    (send,) = [child for child in tree[2] if child[1] == "send_clean_job"]
    assert ("worker", "handle_clean_job", [("worker", "clean_github_data", [])]) in send[2]
    worker = next(s for s in trace["spans"] if s["operationName"] == "handle_clean_job")
    assert trace["processes"][worker["processID"]]["serviceName"] == "worker"
    assert json_tags(worker)["baggage.client"] == "ci" and json_tags(worker)["baggage.contributors.top"] == 2
