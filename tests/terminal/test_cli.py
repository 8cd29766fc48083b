"""`python -m workshop traces | trace | diff | collector | fake-github`: output, and clear errors.
(`diff`'s output itself: tests/lessons/test_diffs.py.)"""

from __future__ import annotations

import json
import time

import pytest
import requests

from tests.support.processes import run_workshop, runner_env, stage_processes
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.lessons.stages import all_stages
from workshop.ports import free_port
from workshop.serving import serve_in_thread
from workshop.terminal.query_client import QueryClient
from workshop.tracestore import model
from workshop.tracestore.collector import CollectorConfig, running_collector


@pytest.fixture(scope="module")
def traces():
    """A store holding step 3's traces: a slow first request, a fast one, and an error."""
    with (
        serve_in_thread(create_app(FakeGitHubConfig(computing_calls=2))) as github,
        running_collector(CollectorConfig.on_free_ports()) as store,
    ):
        ids = {}
        with stage_processes("step3_tags_logs", github, store.ports) as app:
            for name, path in [("slow", "pallets/flask"), ("fast", "pallets/flask"), ("error", "a/server-error")]:
                ids[name] = requests.get(f"{app.url}/contributors/{path}", timeout=15).headers["X-Trace-Id"]
            app.stop()
        for trace_id in ids.values():
            assert QueryClient(store.url).wait_for_trace(trace_id, {"contributors"}, timeout=10)
        yield store, ids


def workshop(*args: str):
    return run_workshop(*args, env=runner_env())


def test_traces_lists_slowest_first(traces):
    store, ids = traces
    result = workshop("traces", "--query-url", store.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout
    assert lines.index(ids["slow"]) < lines.index(ids["fast"])
    assert "contributors contributors" in lines


def test_traces_filters(traces):
    store, ids = traces
    slow = workshop("traces", "--query-url", store.url, "--min-duration", "500ms").stdout
    assert ids["slow"] in slow and ids["fast"] not in slow and ids["error"] not in slow
    errors = workshop("traces", "--query-url", store.url, "--error").stdout
    assert ids["error"] in errors and ids["slow"] not in errors
    only = workshop("traces", "--query-url", store.url, "--service", "nobody").stdout
    assert "no trace matches" in only


def test_trace_prints_a_waterfall_with_details_on_demand(traces):
    store, ids = traces
    plain = workshop("trace", ids["slow"], "--query-url", store.url)
    assert plain.returncode == 0, plain.stderr
    assert f"trace {ids['slow']}" in plain.stdout and "6 spans" in plain.stdout
    assert "github_request" in plain.stdout and "http.status_code" not in plain.stdout
    detailed = workshop("trace", ids["slow"], "--query-url", store.url, "--all").stdout
    assert "http.status_code=202" in detailed and "event=retry" in detailed
    error = workshop("trace", ids["error"], "--query-url", store.url).stdout
    assert "✗ error" in error and "errors" in error


def test_trace_as_json_for_the_jaeger_ui(traces):
    store, ids = traces
    result = workshop("trace", ids["slow"], "--json", "--query-url", store.url)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert list(body) == ["data"] and body["data"][0]["traceID"] == ids["slow"]
    assert body["data"][0] == QueryClient(store.url).trace(ids["slow"])


def test_clear_errors_without_a_traceback(traces):
    store, _ = traces
    cases = [
        (["trace", "0123456789abcdef", "--query-url", store.url], "trace not found"),
        (["trace", "not-hex", "--query-url", store.url], "not a trace id"),
        (["traces", "--query-url", f"http://127.0.0.1:{free_port()}"], "no trace store answers at"),
        (["traces", "--min-duration", "soon", "--query-url", store.url], "--min-duration: not a duration"),
        (["diff", "step1"], "step1 is the first lesson"),
        (["collector", "--max-traces", "0"], "--max-traces must be at least 1"),
    ]
    for args, message in cases:
        result = workshop(*args)
        assert result.returncode == 2, args
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_collector_port_in_use_is_clear():
    with running_collector(CollectorConfig.on_free_ports()) as store:
        result = workshop(
            "collector", "--jaeger-compact-port", str(store.jaeger_compact_port), "--query-port", str(free_port())
        )
        assert result.returncode == 2 and f"port {store.jaeger_compact_port} is already in use" in result.stderr
        assert "move this one with JAEGER_AGENT_PORT=" in result.stderr  # the sentence every port's clash gets
        result = workshop(
            "collector", "--jaeger-compact-port", str(free_port(kind=2)), "--query-port", str(store.query_port)
        )
        assert result.returncode == 2 and f"port {store.query_port} is already in use" in result.stderr


def test_stage_folders_hold_no_stray_files():
    for stage in all_stages():
        names = {p.name for p in stage.folder.iterdir() if p.name != "__pycache__"}
        # lesson 9 adds Traefik's files and the Node.js proxy's folder
        extra = {"traefik.sh", "routes.yml", "github-proxy"} if stage.name == "step9" else set()
        code = {"app.py", "github_proxy.py", "worker.py", "tracing.py", "tracing_fixes.py", "serving.py"}
        assert names <= code | {"Procfile", "README.md"} | extra, names


def test_traces_without_a_service_lists_the_slowest_of_every_service_and_never_cuts_an_id():
    """Before: each service's 20 were joined alphabetically and cut to 20, so `zulu`'s slow trace was lost."""
    from tests.support.udp_capture import close, jaeger_tracer

    with running_collector(CollectorConfig.on_free_ports()) as store:
        alpha, zulu = (
            jaeger_tracer("alpha", store.jaeger_compact_port),
            jaeger_tracer("zulu", store.jaeger_compact_port),
        )
        for _ in range(20):
            alpha.start_span("quick").finish()
        slow = zulu.start_span("slow")
        slow.finish(finish_time=slow.start_time + 3)
        close(alpha)
        close(zulu)
        deadline = time.monotonic() + 5
        while store.store.trace_count() < 21 and time.monotonic() < deadline:
            time.sleep(0.05)
        result = run_workshop("traces", "--limit", "5", "--query-url", store.url, env=runner_env(COLUMNS="80"))
        assert result.returncode == 0, result.stderr
        slow_id = f"{slow.context.trace_id:016x}"
        assert slow_id in result.stdout.splitlines()[2]  # the first row: the slowest of all
        assert sum(1 for line in result.stdout.splitlines() if "alpha quick" in line) == 4
        assert max(len(line) for line in result.stdout.splitlines()) <= 80
        missing = run_workshop("traces", "--service", "contributors", "--query-url", store.url, env=runner_env())
        assert "no trace matches" in missing.stdout
        assert "no service is called 'contributors'; the services with traces: alpha, zulu" in missing.stdout


def test_trace_at_80_columns_keeps_its_bars_and_takes_a_fixed_scale(traces):
    store, ids = traces
    env = runner_env(COLUMNS="80")
    result = run_workshop("trace", ids["slow"], "--all", "--scale", "4s", "--query-url", store.url, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("span") and "0 ─ 4s (fixed scale)" in line for line in lines)
    assert sum(1 for line in lines if "github_request" in line and "█" in line) == 3
    bad = run_workshop("trace", ids["slow"], "--scale", "soon", "--query-url", store.url, env=env)
    assert bad.returncode == 2 and "--scale: not a duration" in bad.stderr


def test_explain_says_what_is_wrong_like_a_linter(traces):
    """The trace doctor in the terminal: exit 0 with nothing found, 1 with a finding (--json: its kind)."""
    store, ids = traces
    clean = workshop("explain", ids["slow"], "--query-url", store.url)
    assert clean.returncode == 0 and "nothing wrong found" in clean.stdout, clean.stdout + clean.stderr
    recent = workshop("explain", "--recent", "20", "--query-url", store.url)
    assert recent.returncode in (0, 1) and "the newest" in recent.stdout
    assert workshop("explain", "--query-url", store.url).returncode == 2  # no trace id: a clear error
    failed = model.span(
        "00000000000fa11d",
        "00000000000fa11d",
        "GET /x",
        [],
        1_700_000_000_000_000,
        5,
        [model.tag("http.status_code", "int64", 503)],
        [],
    )
    store.store.add_spans([(failed, model.process("edge", []))])
    found = workshop("explain", "00000000000fa11d", "--json", "--query-url", store.url)
    assert found.returncode == 1
    (finding,) = json.loads(found.stdout)["findings"]
    assert finding["kind"] == "error_not_marked" and finding["spans"] == ["00000000000fa11d"]
    text = workshop("explain", "00000000000fa11d", "--query-url", store.url).stdout
    assert "✗ edge's GET /x answered 503 but is not marked as an error" in text
