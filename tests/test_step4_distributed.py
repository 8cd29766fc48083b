"""Lesson 4: one trace across the gateway and the github-proxy, joined by the context in HTTP headers."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import ROUTER, github_gives_up_soon, github_module, serve_stage_app
from tests.support.expected_trees import EXPECTED_TREES, exact
from tests.support.service_router import as_service
from tests.support.spans import build_tree, find, view, walk
from tests.support.stage_loader import load_stage_module
from workshop.lessons.expected import PROXY_CALL_TAGS
from workshop.ports import free_port
from workshop.serving import serve_in_thread

STAGE = "step4_distributed"


@pytest.fixture
def app_url(fake_github, monkeypatch, spans):
    with serve_stage_app(STAGE, monkeypatch, fake_github.url) as url:
        yield url


def fetch(url: str, path: str, spans, **kwargs):
    response = requests.get(url + path, timeout=15, **kwargs)
    return response, build_tree(spans.get_spans())


def test_one_trace_across_both_services(app_url, spans):
    response, root = fetch(app_url, "/contributors/pallets/flask", spans)
    assert response.status_code == 200
    assert root.tree() == EXPECTED_TREES[STAGE]
    assert {span.trace_id for span in walk(root)} == {root.trace_id}
    assert response.headers["X-Trace-Id"] == f"{root.trace_id:016x}"


def test_client_span_is_the_parent_of_the_proxys_server_span(app_url, fake_github, spans):
    _, root = fetch(app_url, "/contributors/pallets/flask", spans)
    call = find(root, "call_github_proxy")[0]
    served = find(root, "stats")[0]
    assert served.parent_id == call.span_id
    assert (call.service, served.service) == ("gateway", "github-proxy")
    assert call.tags == exact(PROXY_CALL_TAGS, {"http.url": call.tags["http.url"], "http.status_code": 200})
    assert call.tags["http.url"].endswith("/stats/pallets/flask")
    assert served.tags["span.kind"] == "server" and served.tags["http.status_code"] == 200
    attempt = find(root, "github_request")[0]
    assert attempt.tags["peer.service"] == "github" and attempt.service == "github-proxy"


def test_an_error_in_the_proxy_shows_on_both_sides(app_url, spans):
    response, root = fetch(app_url, "/contributors/octocat/server-error", spans)
    assert response.status_code == 502
    assert response.json() == {"error": "GitHub answered 500"}
    marked = {(span.service, span.operation) for span in walk(root) if span.tags.get("error") is True}
    assert marked == {
        ("gateway", "contributors"),
        ("gateway", "call_github_proxy"),
        ("github-proxy", "stats"),
        ("github-proxy", "get_repo_contributors"),
        ("github-proxy", "github_request"),
    }


@pytest.mark.parametrize(
    "repo, status, retry_after", [("does-not-exist", 404, False), ("rate-limited", 429, True), ("slow", 504, False)]
)
def test_the_proxys_status_and_retry_after_reach_the_user(app_url, spans, repo, status, retry_after):
    with github_gives_up_soon(STAGE):
        response, _ = fetch(app_url, f"/contributors/octocat/{repo}", spans)
    assert response.status_code == status
    assert "error" in response.json()
    assert ("Retry-After" in response.headers) is retry_after


def test_proxy_down_is_502_with_a_message(monkeypatch, spans):
    gateway = load_stage_module(STAGE)
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(gateway, "PROXY_URL", closed)
    with serve_in_thread(as_service(gateway.app, "gateway", ROUTER)) as url:
        response, root = fetch(url, "/contributors/pallets/flask", spans)
    assert response.status_code == 502
    assert response.json() == {"error": f"cannot connect to the github-proxy at {closed}"}
    assert find(root, "call_github_proxy")[0].tags["error"] is True
    assert root.tags["error"] is True


def test_proxy_too_slow_is_504_within_the_timeout(app_url, monkeypatch, spans):
    monkeypatch.setattr(load_stage_module(STAGE), "PROXY_TIMEOUT", 0.2)
    started = time.monotonic()
    with github_gives_up_soon(STAGE):
        response, _ = fetch(app_url, "/contributors/octocat/slow", spans)  # GitHub takes 2 s; the proxy waits 0.5
    assert response.status_code == 504
    assert response.json() == {"error": "the github-proxy did not answer within 0.2 s"}
    assert time.monotonic() - started < 1.5
    # The proxy gives up on GitHub later (0.5 s): let its spans land before the next test clears them.
    deadline = time.monotonic() + 5
    while not any(s.operation_name == "stats" for s in spans.get_spans()) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"uber-trace-id": "garbage"},
        {"uber-trace-id": "zz:yy:0:1"},
        {"uber-trace-id": "0:0:0:1"},
        {"uber-trace-id": "1:2:3"},
        {"uber-trace-id": "a" * 5000},
        {"uber-trace-id": "garbage", "uberctx-client": "%zz%"},
    ],
)
def test_a_missing_or_garbled_trace_header_starts_a_new_trace(fake_github, monkeypatch, spans, headers):
    proxy = github_module(STAGE)
    monkeypatch.setattr(proxy, "GITHUB_API_URL", fake_github.url)
    monkeypatch.setattr(proxy, "RETRY_DELAY", 0.01)
    with serve_in_thread(as_service(proxy.app, "github-proxy", ROUTER)) as url:
        response = requests.get(url + "/stats/pallets/flask", headers=headers, timeout=10)
    assert response.status_code == 200
    root = build_tree(spans.get_spans())
    assert root.operation == "stats" and root.parent_id is None
    assert response.headers["X-Trace-Id"] == f"{root.trace_id:016x}"


def test_baggage_without_a_trace_id_is_served(fake_github, monkeypatch, spans):
    """jaeger-client alone would leave such a request unrecorded; the lessons record it (a new trace)."""
    proxy = github_module(STAGE)
    monkeypatch.setattr(proxy, "GITHUB_API_URL", fake_github.url)
    monkeypatch.setattr(proxy, "RETRY_DELAY", 0.01)
    with serve_in_thread(as_service(proxy.app, "github-proxy", ROUTER)) as url:
        response = requests.get(url + "/stats/pallets/flask", headers={"uberctx-client": "x"}, timeout=10)
    assert response.status_code == 200 and isinstance(response.json(), list)


def test_the_context_travels_in_the_uber_trace_id_header(monkeypatch, spans):
    """What the gateway puts on the wire: a recording stand-in for the proxy shows the header."""
    from flask import Flask, jsonify, request

    seen = {}
    recorder = Flask("recorder")

    @recorder.get("/stats/<owner>/<repo>")
    def record(owner, repo):
        seen.update({k.lower(): v for k, v in request.headers.items()})
        return jsonify([])

    gateway = load_stage_module(STAGE)
    with serve_in_thread(recorder) as proxy_url:
        monkeypatch.setattr(gateway, "PROXY_URL", proxy_url)
        with serve_in_thread(as_service(gateway.app, "gateway", ROUTER)) as url:
            requests.get(url + "/contributors/pallets/flask", timeout=10)
    call = view(next(s for s in spans.get_spans() if s.operation_name == "call_github_proxy"))
    trace_id, span_id, parent_id, flags = seen["uber-trace-id"].split(":")
    assert (int(trace_id, 16), int(span_id, 16), int(flags)) == (call.trace_id, call.span_id, 1)
