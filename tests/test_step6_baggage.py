"""Lesson 6: baggage set at the edge, read across HTTP (the proxy) and across Redis (the worker)."""

from __future__ import annotations

import json
import threading

import pytest
import redis
import requests
from flask import Flask, jsonify
from flask import request as flask_request

from tests.conftest import ROUTER, TOKEN, serve_stage_app, session_redis_url
from tests.expected_trees import EXPECTED_TREES
from tests.service_router import as_service
from tests.spans import build_tree, find, settled
from tests.stage_loader import load_stage_module
from workshop.serving import serve_in_thread

STAGE = "step6_baggage"


@pytest.fixture
def app_url(fake_github, monkeypatch, spans):
    with serve_stage_app(STAGE, monkeypatch, fake_github.url, token=TOKEN) as url:
        yield url


def fetch(url: str, path: str, spans, **headers: str):
    response = requests.get(url + path, headers=headers, timeout=20)
    return response, build_tree(settled(spans))


def test_same_tree_as_lesson_5(app_url, spans):
    response, root = fetch(app_url, "/contributors/pallets/flask", spans)
    assert response.status_code == 200
    assert root.tree() == EXPECTED_TREES[STAGE]


def test_baggage_is_visible_in_every_service(app_url, spans):
    _, root = fetch(app_url, "/contributors/pallets/flask?top=2", spans, **{"X-Client": "curl-test"})
    set_at_edge = [log for log in root.logs if log.get("event") == "baggage"]
    assert {(log["key"], log["value"]) for log in set_at_edge} == {("client", "curl-test"), ("contributors.top", "2")}
    assert root.service == "gateway"
    served = find(root, "stats")[0]
    assert served.service == "github-proxy" and served.tags["baggage.client"] == "curl-test"
    handled = find(root, "handle_clean_job")[0]
    assert handled.service == "worker"
    assert handled.tags["baggage.client"] == "curl-test" and handled.tags["baggage.contributors.top"] == 2


def test_baggage_changes_what_the_worker_does(app_url, spans):
    everyone, _ = fetch(app_url, "/contributors/pallets/flask", spans)
    spans.clear()
    top_two, _ = fetch(app_url, "/contributors/pallets/flask?top=2", spans)
    assert len(everyone.json()["contributors"]) > 2
    assert top_two.json()["contributors"] == everyone.json()["contributors"][:2]


@pytest.mark.parametrize("top", ["0", "101", "two", "-1", "1.5"])
def test_invalid_top_is_400(app_url, fake_github, top):
    response = requests.get(app_url + f"/contributors/pallets/flask?top={top}", timeout=10)
    assert response.status_code == 400
    assert response.json() == {"error": f"invalid top {top!r}: ask for 1 to 100 contributors"}
    assert fake_github.calls()["total"] == 0


def test_oversized_baggage_is_dropped_with_a_log_event_not_forwarded(app_url, spans):
    client = "x" * 100
    response, root = fetch(app_url, "/contributors/pallets/flask", spans, **{"X-Client": client})
    assert response.status_code == 200
    dropped = [log for log in root.logs if log.get("event") == "baggage.dropped"]
    assert dropped == [{"event": "baggage.dropped", "key": "client", "bytes": 106, "limit": 64}]
    assert find(root, "stats")[0].tags["baggage.client"] == "-"
    assert find(root, "handle_clean_job")[0].tags["baggage.client"] == "-"


def test_baggage_on_the_wire_uberctx_headers(monkeypatch, spans):
    """What the gateway sends the proxy: a recording stand-in shows the headers."""
    seen = {}
    recorder = Flask("recorder")

    @recorder.get("/stats/<owner>/<repo>")
    def record(owner, repo):
        seen.update({k.lower(): v for k, v in flask_request.headers.items()})
        return jsonify({"error": "recorded"}), 502

    gateway = load_stage_module(STAGE)
    with serve_in_thread(recorder) as proxy_url:
        monkeypatch.setattr(gateway, "PROXY_URL", proxy_url)
        with serve_in_thread(as_service(gateway.app, "gateway", ROUTER)) as url:
            requests.get(url + "/contributors/pallets/flask?top=3", headers={"X-Client": "my laptop"}, timeout=10)
    assert seen["uberctx-client"] == "my%20laptop"  # URL-encoded
    assert seen["uberctx-contributors.top"] == "3"
    assert "uber-trace-id" in seen
    assert not any(TOKEN in value for value in seen.values())


def test_baggage_crosses_redis_without_changing_the_message(fake_github, monkeypatch, spans):
    """A stand-in worker records the job as it arrives: the same fields as lesson 5, baggage in `trace`."""
    client = redis.Redis.from_url(session_redis_url(), socket_timeout=10)
    client.flushdb()
    jobs = []

    def stand_in_worker() -> None:
        _, message = client.brpop(["contributors:jobs"], timeout=10)
        job = json.loads(message)
        jobs.append(job)
        client.lpush(job["reply_to"], json.dumps({"contributors": []}))

    thread = threading.Thread(target=stand_in_worker, daemon=True)
    thread.start()
    gateway, github_proxy = load_stage_module(STAGE), load_stage_module(STAGE, "github_proxy")
    monkeypatch.setattr(gateway, "redis_client", redis.Redis.from_url(session_redis_url(), socket_timeout=15))
    monkeypatch.setattr(github_proxy, "GITHUB_API_URL", fake_github.url)
    monkeypatch.setattr(github_proxy, "RETRY_DELAY", 0.01)
    with serve_in_thread(as_service(github_proxy.app, "github-proxy", ROUTER)) as proxy:
        monkeypatch.setattr(gateway, "PROXY_URL", proxy)
        with serve_in_thread(as_service(gateway.app, "gateway", ROUTER)) as url:
            response = requests.get(url + "/contributors/a/b?top=5", headers={"X-Client": "ci"}, timeout=20)
    thread.join(timeout=10)
    assert response.status_code == 200
    (job,) = jobs
    assert set(job) == {"job_id", "reply_to", "stats", "trace"}  # lesson 5's message, unchanged
    assert job["trace"]["uberctx-client"] == "ci" and job["trace"]["uberctx-contributors.top"] == "5"
    assert "uber-trace-id" in job["trace"]


def test_no_secret_in_baggage(app_url, spans):
    _, root = fetch(app_url, "/contributors/pallets/flask?top=3", spans, **{"X-Client": "ci"})
    for span in settled(spans):
        baggage = span.context.baggage
        assert set(baggage) <= {"client", "contributors.top"}
        assert not any(TOKEN in value for value in baggage.values())
