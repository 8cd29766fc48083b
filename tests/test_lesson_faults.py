"""Faults and bad input against the lessons: nothing from outside kills a process, answers 500, or loses
another request's trace. (Each test here failed on the lessons before they were hardened.)"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import ROUTER, github_module, running_worker, serve_stage_app, session_redis_url
from tests.support.expected_trees import json_tree
from tests.support.processes import run_stage_folder, run_workshop, runner_env, stage_processes
from tests.support.service_router import as_service
from tests.support.spans import build_tree, find, settled
from tests.support.stage_loader import ROOT, load_stage_module
from tests.support.wire_capture import headers_to_the_proxy
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.lessons.stages import JAEGER_CLIENT, all_stages, find_stage
from workshop.serving import serve_in_thread
from workshop.terminal.query_client import QueryClient
from workshop.tracestore.collector import CollectorConfig, running_collector

TRACED = [stage.folder.name for stage in all_stages() if stage.tracer == JAEGER_CLIENT]  # lessons 2-6
WITH_WORKER = [stage.folder.name for stage in all_stages() if stage.needs_redis and stage.opentracing]  # 5-7
PROXIED = [name for name in TRACED if "github_proxy" in find_stage(name).http_ports.values()]  # 4-6
# jaeger-client accepts these, then cannot serialise the batch they end up in
UNSENDABLE = [f"{1:x}:{2**64 + 5:x}:0:1", f"{1:x}:{2:x}:0:{2**31 + 1:x}", f"{1:x}:{2:x}:{2**70:x}:1"]


def get(url: str, path: str, timeout: float = 20, **headers: str) -> requests.Response:
    return requests.get(url + path, headers=headers, timeout=timeout)


@pytest.mark.parametrize("header", UNSENDABLE)
@pytest.mark.parametrize("stage", TRACED)
def test_an_unsendable_trace_header_starts_a_new_recorded_trace(stage, header, fake_github, monkeypatch, spans):
    with serve_stage_app(stage, monkeypatch, fake_github.url) as url:
        response = get(url, "/contributors/pallets/flask", **{"uber-trace-id": header})
    assert response.status_code == 200
    root = build_tree(settled(spans))
    assert root.parent_id is None and root.span_id < 2**64
    assert response.headers["X-Trace-Id"] == f"{root.trace_id:016x}"


@pytest.mark.parametrize("stage", TRACED)
def test_a_trace_the_caller_does_not_sample_names_no_trace(stage, fake_github, monkeypatch, spans):
    """`uber-trace-id: ...:0` is an upstream "don't record": honoured, and no X-Trace-Id points at nothing."""
    with serve_stage_app(stage, monkeypatch, fake_github.url) as url:
        response = get(url, "/contributors/pallets/flask", **{"uber-trace-id": "abc:def:0:0"})
    assert response.status_code == 200
    assert "X-Trace-Id" not in response.headers
    assert settled(spans) == []


@pytest.mark.parametrize("stage", WITH_WORKER)
def test_a_job_nested_1000_deep_does_not_kill_the_worker(stage, fake_github, monkeypatch, spans):
    client = redis.Redis.from_url(session_redis_url(), socket_timeout=5)
    with serve_stage_app(stage, monkeypatch, fake_github.url) as url:
        client.lpush("contributors:jobs", "[" * 1000 + "]" * 1000)  # 2 KB
        client.lpush("contributors:jobs", '{"a": ' * 1000 + "1" + "}" * 1000)
        response = get(url, "/contributors/pallets/flask")
        assert response.status_code == 200, response.text
        assert [t.name for t in threading.enumerate() if t.name == "worker"] == ["worker"]


@pytest.mark.parametrize("stage", WITH_WORKER)
def test_a_job_whose_reply_key_is_not_a_list_is_logged_and_the_worker_goes_on(stage, caplog, spans):
    client = redis.Redis.from_url(session_redis_url(), socket_timeout=5)
    with running_worker(stage):
        client.set("contributors:reply:taken", "a string, not a list")
        client.lpush(
            "contributors:jobs", json.dumps({"job_id": "1", "reply_to": "contributors:reply:taken", "stats": []})
        )
        client.lpush("contributors:jobs", json.dumps({"job_id": "2", "reply_to": "contributors:reply:ok", "stats": []}))
        assert client.brpop(["contributors:reply:ok"], timeout=5) is not None
    messages = [record.getMessage() for record in caplog.records]
    assert any("cannot answer a job" in m and "WRONGTYPE" in m for m in messages), messages
    assert not any("cannot take jobs" in m for m in messages)


def test_the_gateway_lets_no_client_baggage_in(fake_github, monkeypatch, spans):
    """Lesson 6's edge: spoofed, invalid, huge or numerous `uberctx-*` headers are not admitted."""
    headers = {
        "X-Client": "x" * 100,  # too long: dropped, and no spoofed value takes its place
        "uberctx-client": "spoofed",
        "uberctx-contributors.top": "abc",
        "uberctx-huge": "y" * 60_000,
        **{f"uberctx-extra{n}": "z" for n in range(88)},  # the server takes 100 headers: all but 12
        "jaeger-baggage": "contributors.top=-1",
    }
    seen, response = headers_to_the_proxy("step6_baggage", monkeypatch, "/contributors/pallets/flask", headers)
    assert response.status_code == 502 and response.json() == {"error": "recorded"}
    assert "uber-trace-id" in seen
    assert [key for key in seen if key.startswith("uberctx-")] == []
    root = build_tree(settled(spans))
    assert [log["key"] for log in root.logs if log.get("event") == "baggage.dropped"] == ["client"]


@pytest.mark.parametrize("top", ["abc", "-1", "0", "101", "1e3", "²", " 5", "9" * 5000])
def test_the_worker_checks_the_top_it_reads_from_baggage(top, spans):
    """Baggage reaching the worker from anywhere (not only our gateway) is checked where it is used."""
    client = redis.Redis.from_url(session_redis_url(), socket_timeout=5)
    stats = [{"author": {"login": f"user{n}"}, "total": n + 1} for n in range(3)]
    carrier = {"uber-trace-id": "abc:def:0:1", "uberctx-contributors.top": top}
    with running_worker("step6_baggage"):
        job = {"job_id": "1", "reply_to": "contributors:reply:top", "stats": stats, "trace": carrier}
        client.lpush("contributors:jobs", json.dumps(job))
        _, answer = client.brpop(["contributors:reply:top"], timeout=5)
    assert len(json.loads(answer)["contributors"]) == 3  # all of them, as if no top was asked
    (handled,) = find(build_tree(settled(spans)), "handle_clean_job")
    assert "baggage.contributors.top" not in handled.tags
    expected = "baggage.ignored" if len(top) > 40 else "baggage.invalid"  # too big to read, or not 1-100
    assert [log["event"] for log in handled.logs] == [expected]


@pytest.mark.parametrize("header", UNSENDABLE)
@pytest.mark.parametrize("stage", WITH_WORKER)
def test_an_unsendable_trace_context_in_a_job_starts_a_new_trace(stage, header, spans):
    client = redis.Redis.from_url(session_redis_url(), socket_timeout=5)
    with running_worker(stage):
        job = {"job_id": "1", "reply_to": "contributors:reply:t", "stats": [], "trace": {"uber-trace-id": header}}
        client.lpush("contributors:jobs", json.dumps(job))
        assert client.brpop(["contributors:reply:t"], timeout=5) is not None
    root = build_tree(settled(spans))
    assert root.operation == "handle_clean_job" and root.parent_id is None and root.trace_id < 2**64


def test_baggage_without_a_trace_id_is_recorded_with_that_baggage(fake_github, monkeypatch, spans):
    """jaeger-client leaves such a request unsampled; the lessons record it, and name it in X-Trace-Id."""
    proxy = load_stage_module("step6_baggage", "github_proxy")
    monkeypatch.setattr(proxy, "GITHUB_API_URL", fake_github.url)
    monkeypatch.setattr(proxy, "RETRY_DELAY", 0.01)
    with serve_in_thread(as_service(proxy.app, "github-proxy", ROUTER)) as url:
        response = get(url, "/stats/pallets/flask", **{"uberctx-client": "direct"})
    assert response.status_code == 200
    root = build_tree(settled(spans))
    assert root.operation == "stats" and root.tags["baggage.client"] == "direct"
    assert response.headers["X-Trace-Id"] == f"{root.trace_id:016x}"


def test_a_huge_baggage_item_reaching_a_service_is_ignored(fake_github, monkeypatch, spans):
    proxy = load_stage_module("step6_baggage", "github_proxy")
    monkeypatch.setattr(proxy, "GITHUB_API_URL", fake_github.url)
    monkeypatch.setattr(proxy, "RETRY_DELAY", 0.01)
    with serve_in_thread(as_service(proxy.app, "github-proxy", ROUTER)) as url:
        response = get(url, "/stats/pallets/flask", **{"uber-trace-id": "abc:def:0:1", "uberctx-client": "c" * 5000})
    assert response.status_code == 200
    root = build_tree(settled(spans))
    assert root.tags["baggage.client"] == "-"
    assert [log["event"] for log in root.logs if log.get("event", "").startswith("baggage")] == ["baggage.ignored"]


@pytest.mark.parametrize("top", ["²", "①", "٣", "9" * 5000, "1_0"])
def test_unicode_digits_and_huge_tops_are_400(top, fake_github, monkeypatch, spans):
    with serve_stage_app("step6_baggage", monkeypatch, fake_github.url) as url:
        response = requests.get(url + "/contributors/pallets/flask", params={"top": top}, timeout=20)
    assert response.status_code == 400
    assert response.json()["error"].startswith("invalid top") and len(response.json()["error"]) < 100


def test_a_non_ascii_client_is_recorded_as_utf8(fake_github, monkeypatch, spans):
    with serve_stage_app("step6_baggage", monkeypatch, fake_github.url) as url:
        response = requests.get(
            url + "/contributors/pallets/flask", headers={"X-Client": "é ü 日本".encode()}, timeout=20
        )
    assert response.status_code == 200
    root = build_tree(settled(spans))
    assert find(root, "stats")[0].tags["baggage.client"] == "é ü 日本"


@pytest.mark.parametrize("stage", WITH_WORKER)
def test_200_simultaneous_requests_all_get_their_answer(stage, fake_github, monkeypatch, spans):
    """More requests wait for a worker than Redis connections exist: they queue for a turn, none gets 503."""
    fake_github.config.computing_calls = 0
    fake_github.config.rate_limit = 10_000
    with serve_stage_app(stage, monkeypatch, fake_github.url) as url:
        gateway = load_stage_module(stage)
        # One process serves all 200 here (gateway, proxy, worker, GitHub): slower than the real thing
        monkeypatch.setattr(gateway, "PROXY_TIMEOUT", 50.0)
        monkeypatch.setattr(gateway, "WORKER_TIMEOUT", 50.0)
        monkeypatch.setattr(github_module(stage), "GITHUB_TIMEOUT", 50.0)
        get(url, "/contributors/pallets/flask")  # warm: GitHub has the stats
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=200) as pool:
            answers = list(pool.map(lambda n: get(url, f"/contributors/pallets/r{n % 7}", timeout=60), range(200)))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(200) == 200, {s: statuses.count(s) for s in set(statuses)}
    assert {answer.json()["repo"] for answer in answers} == {f"pallets/r{n}" for n in range(7)}
    assert time.monotonic() - started < 90


# --- over the real wire: the stage's processes, jaeger-client UDP, the trace store ---------------------------


@pytest.fixture
def world():
    """A fake GitHub (no 202s: every request has the same shape) and a trace store, on free ports."""
    with (
        serve_in_thread(create_app(FakeGitHubConfig(computing_calls=0, rate_limit=10_000))) as github,
        running_collector(CollectorConfig.on_free_ports()) as store,
    ):
        yield github, store


def stage_env(github: str, store) -> dict:
    """stage_processes' arguments: this fake GitHub, this store, and the session's Redis (emptied)."""
    redis_url = session_redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    return {"github": github, "store_ports": store.ports, "redis_url": redis_url}


def wait_for_spans(query: QueryClient, trace_id: str, count: int, timeout: float = 10) -> dict | None:
    """The trace once it has `count` spans (each service sends its own batches, on its own schedule)."""
    deadline = time.monotonic() + timeout
    trace = query.wait_for_trace(trace_id, set(), timeout)
    while (trace is None or len(trace["spans"]) < count) and time.monotonic() < deadline:
        time.sleep(0.1)
        trace = query.wait_for_trace(trace_id, set(), 1)
    return trace


def test_one_bad_trace_header_loses_no_other_request_s_trace(world):
    """Before: the unsendable span id broke jaeger-client's buffer, and the next batches went out malformed."""
    github, store = world
    stage = "step6_baggage"
    with stage_processes(stage, **stage_env(github, store)) as app:
        ids = []
        for bad in UNSENDABLE:
            assert get(app.url, "/contributors/pallets/flask", **{"uber-trace-id": bad}).status_code == 200
            ids += [get(app.url, "/contributors/pallets/flask").headers["X-Trace-Id"] for _ in range(3)]
        query = QueryClient(store.url)
        traces = [wait_for_spans(query, trace_id, 8) for trace_id in ids]
        app.stop()
    for trace in traces:
        assert trace is not None and json_tree(trace) == json_tree(traces[0])
    assert len(traces[0]["spans"]) == 8  # a whole trace: no 202s here


@pytest.mark.parametrize("target", ["gateway", "github-proxy"])
def test_sigterm_mid_request_finishes_it_and_its_trace_arrives_whole(target):
    """The request is in flight (GitHub answers in 1 s) when SIGTERM comes: it is answered, its trace is whole."""
    with (
        serve_in_thread(create_app(FakeGitHubConfig(computing_calls=0, latency=1.0))) as github,
        running_collector(CollectorConfig.on_free_ports()) as store,
        stage_processes("step6_baggage", **stage_env(github, store)) as app,
    ):
        with ThreadPoolExecutor(max_workers=1) as pool:
            answer = pool.submit(get, app.url, "/contributors/pallets/flask")
            deadline = time.monotonic() + 10  # until the request is at GitHub (which answers in 1 s): in flight
            while requests.get(github + "/", timeout=5).json()["calls"]["total"] < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            app.processes[target].send_signal(signal.SIGTERM)
            response = answer.result()
        assert app.processes[target].wait(timeout=15) == 0
        assert response.status_code == 200, response.text
        trace = wait_for_spans(QueryClient(store.url), response.headers["X-Trace-Id"], 8)
        app.stop()
    assert trace is not None and len(trace["spans"]) == 8


def test_a_crashed_process_makes_the_runner_exit_non_zero_and_say_which(tmp_path):
    stage = tmp_path / "step5_crash"
    shutil.copytree(ROOT / "step5_queue", stage, ignore=shutil.ignore_patterns("__pycache__"))
    (stage / "Procfile").write_text(
        "gateway: python app.py\ngithub-proxy: python github_proxy.py\n"
        "worker: python -c 'import sys, time; time.sleep(1); sys.exit(3)'\n"
    )
    result = run_stage_folder(stage, 5, once=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "worker (exit code 3) stopped on its own" in result.stdout


@pytest.mark.parametrize("stage", TRACED)
def test_dropped_spans_are_logged_at_most_once_a_minute(stage, caplog):
    factory = load_stage_module(stage, "tracing_fixes").DroppedSpans()
    dropped = factory.create_counter("jaeger:reporter_spans", {"result": "dropped"})
    failed = factory.create_counter("jaeger:reporter_spans", {"result": "err"})
    dropped(46)
    failed(3)
    warnings = [r.getMessage() for r in caplog.records if r.name == "tracing"]
    assert warnings == ["46 spans dropped so far: the tracer's queue was full, or no trace store took them"]
    assert factory.dropped == 49
    factory.create_counter("jaeger:reporter_spans", {"result": "ok"})(10)  # sent: nothing to say
    assert factory.dropped == 49


@pytest.mark.parametrize("stage", PROXIED)
def test_the_gateway_waits_for_the_proxy_less_than_the_proxy_s_worst_case(stage):
    gateway, proxy = load_stage_module(stage), load_stage_module(stage, "github_proxy")
    usual = (proxy.MAX_ATTEMPTS - 1) * proxy.RETRY_DELAY + proxy.GITHUB_TIMEOUT  # 202s, then one timeout
    worst = proxy.MAX_ATTEMPTS * proxy.GITHUB_TIMEOUT + (proxy.MAX_ATTEMPTS - 1) * proxy.RETRY_DELAY
    assert usual < gateway.PROXY_TIMEOUT < worst


# --- the lessons' "try next" items, run as their READMEs write them -------------------------------------------


def test_lesson_4_without_its_proxy_answers_502_naming_the_proxy():
    result = run_workshop("run", "step4", "--once", env=runner_env(WITHOUT="github-proxy"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "502 BAD GATEWAY" in result.stdout and "cannot connect to the github-proxy at" in result.stdout
    assert "call_github_proxy ✗ error" in result.stdout
    # the gateway's own log line: its own name, the trace, and the part that failed
    (line,) = [line for line in result.stdout.splitlines() if "no stats for pallets/flask" in line]
    assert "[trace=" in line and "WARNING gateway: no stats" in line and "cannot connect to the github-proxy" in line


def test_lesson_5_follows_from_is_one_word_and_the_waterfall_shows_it(tmp_path):
    stage = tmp_path / "step5_follows"
    shutil.copytree(ROOT / "step5_queue", stage, ignore=shutil.ignore_patterns("__pycache__"))
    worker = stage / "worker.py"
    source = worker.read_text()
    assert source.count("opentracing.child_of(") == 1
    worker.write_text(source.replace("opentracing.child_of(", "opentracing.follows_from("))  # the README's edit
    result = run_stage_folder(stage, 5)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "worker handle_clean_job ⇢" in result.stdout and "░ follows from its parent" in result.stdout


def test_a_bug_in_the_worker_is_answered_and_named(fake_github, monkeypatch, spans):
    worker = load_stage_module("step5_queue", "worker")

    def broken(job):
        raise NameError("name 'follows_from' is not defined")

    monkeypatch.setattr(worker, "trace_parent", broken)
    with serve_stage_app("step5_queue", monkeypatch, fake_github.url) as url:
        response = get(url, "/contributors/pallets/flask")
        assert response.status_code == 502
        assert "the worker failed: NameError: name 'follows_from' is not defined" in response.json()["error"]
        monkeypatch.undo()
        assert get(url, "/contributors/pallets/flask").status_code in (200, 502)  # the worker is still there


def test_lesson_5_redis_cli_command_works_as_written():
    """`.venv/bin/redis-cli -p 6380 LPUSH contributors:jobs 'not json'`, on the test's Redis."""
    url = session_redis_url()
    port = url.rsplit(":", 1)[1].split("/")[0]
    redis_cli = str(Path(sys.executable).parent / "redis-cli")  # .venv/bin/redis-cli, under `make test`
    client = redis.Redis.from_url(url)
    client.delete("contributors:jobs")
    result = subprocess.run(
        [str(redis_cli), "-p", port, "LPUSH", "contributors:jobs", "not json"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr
    assert client.rpop("contributors:jobs") == b"not json"
