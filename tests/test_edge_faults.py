"""What a fault probe broke in lessons 8 and 9's propagation and at lesson 9's edge, over the real wire: the
lesson's processes (and lesson 9's Traefik and Node proxy), a fake GitHub, a trace store of the test's own.
(Each test here failed on the lessons before they were fixed.)"""

from __future__ import annotations

import time

import pytest
import redis
import requests

from tests.conftest import session_redis_url
from tests.support.lesson9_tools import require_lesson9_tools
from tests.support.processes import runner_env, running_stage, stage_processes
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.serving import serve_in_thread
from workshop.terminal.query_client import QueryClient
from workshop.tracestore.collector import CollectorConfig, running_collector
from workshop.tracestore.model import TraceTree

CLIENT_TRACE, CLIENT_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
OTHER_TRACE = "abcdef0123456789abcdef0123456789"
# a valid one of another trace, one of it not sampled, and unusable ones
UBER_TRACE_IDS = [f"{OTHER_TRACE}:1234567890abcdef:0:1", f"{OTHER_TRACE}:1234567890abcdef:0:0", "zz:yy:0:1", "::::"]


# The store, the fake GitHub and lesson 8's processes are shared by this module's tests (each asks with a
# trace id of its own; GitHub's calls are those since the test began).


@pytest.fixture(scope="module")
def store():
    with running_collector(CollectorConfig.on_free_ports()) as collector:
        yield collector


@pytest.fixture(scope="module")
def recording_github():
    fake = create_app(FakeGitHubConfig(computing_calls=0, rate_limit=10_000))
    seen: list[dict[str, str]] = []

    def recording(environ, start_response):
        seen.append({k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")})
        return fake(environ, start_response)

    with serve_in_thread(recording) as url:
        yield url, seen


@pytest.fixture
def github(recording_github):
    """A fake GitHub (no 202s), keeping the headers of every call it got since the test began."""
    recording_github[1].clear()
    return recording_github


@pytest.fixture(scope="module")
def lesson8(recording_github, store):
    redis_url = session_redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    with stage_processes("step8_opentelemetry", recording_github[0], store.ports, redis_url=redis_url) as app:
        yield app


@pytest.fixture(scope="module")
def node(recording_github):
    """Lesson 9's Node.js proxy, on the fake GitHub."""
    from tests.test_github_proxies import node_proxy

    require_lesson9_tools()
    with node_proxy(recording_github[0]) as proxy:
        yield proxy


def server_span(trace: dict, operation: str) -> dict:
    (span,) = [span for span in trace["spans"] if span["operationName"] == operation]
    return span


@pytest.mark.parametrize("uber_trace_id", UBER_TRACE_IDS)
def test_lesson_8_a_valid_traceparent_wins_over_an_uber_trace_id(lesson8, store, uber_trace_id):
    """Before: the Jaeger propagator ran last, and the last wins: the request left the caller's trace (or,
    for an unusable `uber-trace-id`, started a fresh root)."""
    client_trace = f"{UBER_TRACE_IDS.index(uber_trace_id) + 1:x}" + CLIENT_TRACE[1:]  # one for each
    headers = {"traceparent": f"00-{client_trace}-{CLIENT_SPAN}-01", "uber-trace-id": uber_trace_id}
    response = requests.get(lesson8.url + "/contributors/pallets/flask", headers=headers, timeout=20)
    assert response.status_code == 200 and response.headers["X-Trace-Id"] == client_trace
    trace = QueryClient(store.url).wait_for_trace(client_trace, {"gateway", "github-proxy", "worker"}, timeout=10)
    gateway = server_span(trace, "GET /contributors/<owner>/<repo>")
    assert [ref["spanID"] for ref in gateway["references"]] == [CLIENT_SPAN]


def test_lesson_8_an_uber_trace_id_alone_still_joins_its_trace(lesson8, store):
    """jaeger-client callers (lesson 6's services) still join: the W3C header wins only when it is there."""
    headers = {"uber-trace-id": UBER_TRACE_IDS[0]}
    response = requests.get(lesson8.url + "/contributors/pallets/flask", headers=headers, timeout=20)
    assert response.status_code == 200 and response.headers["X-Trace-Id"] == OTHER_TRACE


def test_lesson_9_through_traefik_a_client_s_uber_trace_id_does_not_split_the_trace(store):
    """Before: Traefik's four spans sat alone, and the app's eleven landed in the client's trace, rootless."""
    require_lesson9_tools()
    env = runner_env(JAEGER_QUERY_PORT=str(store.query_port), OTLP_HTTP_PORT=str(store.otlp_http_port))
    with running_stage("step9", env) as (runner, output):
        url = f"http://127.0.0.1:{env['EDGE_PORT']}/contributors/pallets/flask"
        response = requests.get(url, headers={"uber-trace-id": UBER_TRACE_IDS[0]}, timeout=20)
        assert response.status_code == 200
        trace_id = response.headers["X-Trace-Id"]
        services = {"traefik", "gateway", "github-proxy", "worker"}
        query = QueryClient(store.url)
        trace = query.wait_for_trace(trace_id, services, timeout=10)
        assert trace_id != OTHER_TRACE and trace is not None
        (root,) = TraceTree(trace).roots
        assert root.service == "traefik" and len(trace["spans"]) >= 15

        # HEAD (before: the whole pipeline, a GitHub call and a trace) and OPTIONS: 405 from the gateway at once
        proxied = len(query.find_traces("github-proxy", limit=100))
        for method in ("HEAD", "OPTIONS"):
            response = requests.request(method, url, timeout=10)
            assert (response.status_code, response.headers.get("Allow")) == (405, "GET"), method
        time.sleep(1.5)  # the proxy's spans of a request that reached it would have arrived
        assert len(query.find_traces("github-proxy", limit=100)) == proxied


PROPAGATED = {"traceparent", "tracestate", "baggage", "uber-trace-id"}
MANY_ITEMS = ",".join(f"item{n}=v" for n in range(200))  # each would be an `uberctx-*` header of its own


def propagated(headers: dict[str, str]) -> set[str]:
    return {name for name in headers if name in PROPAGATED or name.startswith("uberctx-")}


def test_lesson_8_sends_github_no_trace_context_and_no_baggage(lesson8, github, store):
    """Before: the `requests` instrumentation wrote traceparent, uber-trace-id, baggage and uberctx-* (the
    client's name, alice@example.com) into the calls to GitHub, a third party."""
    _, seen = github
    response = requests.get(
        lesson8.url + "/contributors/pallets/flask?top=3", headers={"X-Client": "alice@example.com"}, timeout=20
    )
    assert response.status_code == 200 and len(seen) == 1
    assert propagated(seen[0]) == set() and "alice" not in str(seen[0])
    # the call is still traced: its CLIENT span, under get_repo_contributors
    trace = QueryClient(store.url).wait_for_trace(response.headers["X-Trace-Id"], {"github-proxy"}, timeout=10)
    spans = {span["spanID"]: span for span in trace["spans"]}
    (work,) = [span for span in spans.values() if span["operationName"] == "get_repo_contributors"]
    calls = [s for s in spans.values() if [r["spanID"] for r in s["references"]] == [work["spanID"]]]
    assert [span["operationName"] for span in calls] == ["GET"]


def test_lesson_8_s_proxy_called_with_200_baggage_items_answers_normally(lesson8, github):
    """Before: `502 GitHub answered 431`: 200 `uberctx-*` headers were more than GitHub takes."""
    _, seen = github
    response = requests.get(lesson8.proxy_url + "/stats/pallets/flask", headers={"baggage": MANY_ITEMS}, timeout=20)
    assert response.status_code == 200, response.text
    assert propagated(seen[-1]) == set()


def test_lesson_9_s_node_proxy_sends_github_no_trace_context_and_no_baggage(node, github):
    _, seen = github
    headers = {"traceparent": TRACEPARENT, "baggage": MANY_ITEMS + ",client=alice%40example.com"}
    response = requests.get(node + "/stats/pallets/flask", headers=headers, timeout=20)
    assert response.status_code == 200, response.text
    assert len(seen) == 1 and propagated(seen[0]) == set()


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "POST", "DELETE"])
def test_lesson_9_s_node_proxy_answers_anything_but_get_405_without_the_pipeline(node, github, method):
    """Before: Express ran the GET route for HEAD (a GitHub call, a whole trace); OPTIONS was 405, as in Python
    now, which answered it 200."""
    _, seen = github
    response = requests.request(method, node + "/stats/pallets/flask", timeout=10)
    assert (response.status_code, response.headers.get("Allow")) == (405, "GET")
    assert "X-Trace-Id" not in response.headers and seen == []
    if method != "HEAD":
        assert response.json() == {"error": "The method is not allowed for the requested URL: only GET is."}


def test_lesson_9_s_traefik_answers_504_when_the_gateway_does_not_answer(tmp_path):
    """Before: no forwarding timeout, and the client waited its own (60 s for the runner's demo request).
    The lesson's routes.yml, with its 30 s made 1 s, in front of a gateway that takes connections and
    never answers (a stopped process's socket does the same)."""
    import os
    import socket
    import subprocess
    import sys
    import time

    from tests.support.lesson9_tools import STAGE
    from tests.support.processes import distinct_free_ports
    from tests.support.stage_loader import ROOT

    require_lesson9_tools()
    routes = (ROOT / STAGE / "routes.yml").read_text()
    assert "responseHeaderTimeout: 30s" in routes, "no forwarding timeout"
    (tmp_path / "routes.yml").write_text(routes.replace("responseHeaderTimeout: 30s", "responseHeaderTimeout: 1s"))
    (tmp_path / "traefik.sh").write_text((ROOT / STAGE / "traefik.sh").read_text())
    edge, otlp = distinct_free_ports(2)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        env = {
            **os.environ,
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
            "EDGE_PORT": str(edge),
            "GATEWAY_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp}",
        }
        traefik = subprocess.Popen(
            ["sh", "traefik.sh"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 15
            while not socket_open(edge) and time.monotonic() < deadline:
                time.sleep(0.1)
            url = f"http://127.0.0.1:{edge}/"
            while requests.get(url, timeout=10).status_code == 404 and time.monotonic() < deadline:
                time.sleep(0.1)  # Traefik is up, and has not read routes.yml yet
            started = time.monotonic()
            response = requests.get(f"http://127.0.0.1:{edge}/contributors/pallets/flask", timeout=10)
            assert response.status_code == 504 and time.monotonic() - started < 5
        finally:
            traefik.terminate()
            traefik.wait(timeout=10)


def socket_open(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
