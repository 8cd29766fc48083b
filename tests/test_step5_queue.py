"""Lesson 5: the work goes through a Redis queue to a worker, and the trace follows the job."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis
import requests

from tests.conftest import ROUTER, github_module, running_worker, serve_stage_app, session_redis_url
from tests.support.expected_trees import EXPECTED_TREES
from tests.support.service_router import as_service
from tests.support.spans import build_tree, find, settled, walk
from tests.support.stage_loader import load_stage_module
from workshop.ports import free_port
from workshop.serving import serve_in_thread

STAGE = "step5_queue"


@pytest.fixture
def app_url(fake_github, monkeypatch, spans):
    with serve_stage_app(STAGE, monkeypatch, fake_github.url) as url:
        yield url


def fetch(url: str, path: str, spans):
    response = requests.get(url + path, timeout=20)
    return response, build_tree(settled(spans))


def test_one_trace_across_gateway_proxy_and_worker(app_url, spans):
    response, root = fetch(app_url, "/contributors/pallets/flask", spans)
    assert response.status_code == 200
    assert root.tree() == EXPECTED_TREES[STAGE]
    assert {span.trace_id for span in walk(root)} == {root.trace_id}


def test_producer_and_consumer_spans_across_redis(app_url, spans):
    _, root = fetch(app_url, "/contributors/pallets/flask", spans)
    send = find(root, "send_clean_job")[0]
    handle = find(root, "handle_clean_job")[0]
    assert handle.parent_id == send.span_id  # child_of: the gateway waits for the answer
    assert (send.service, handle.service) == ("gateway", "worker")
    assert send.tags["span.kind"] == "producer" and handle.tags["span.kind"] == "consumer"
    assert send.tags["message_bus.destination"] == handle.tags["message_bus.destination"] == "contributors:jobs"
    assert send.tags["job.id"] == handle.tags["job.id"]
    clean = find(root, "clean_github_data")[0]
    assert clean.service == "worker" and clean.parent_id == handle.span_id


def test_the_answer_is_the_workers(app_url, spans):
    response, _ = fetch(app_url, "/contributors/pallets/flask", spans)
    assert response.status_code == 200, response.text
    commits = [c["commits"] for c in response.json()["contributors"]]
    assert commits == sorted(commits, reverse=True) and len(commits) >= 3


def test_two_concurrent_requests_for_one_repo_each_get_their_own_answer(app_url, fake_github, spans):
    fake_github.config.computing_calls = 0
    results = {}

    def ask(n: int) -> None:
        response = requests.get(app_url + "/contributors/pallets/flask", timeout=20)
        results[n] = (response.status_code, response.headers.get("X-Trace-Id"), response.json())

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 6 and {status for status, _, _ in results.values()} == {200}, results
    assert len({trace for _, trace, _ in results.values()}) == 6
    answers = {json.dumps(body, sort_keys=True) for _, _, body in results.values()}
    assert len(answers) == 1  # the same repo: the same answer, each from its own reply key
    roots = {span.trace_id for span in settled(spans) if span.parent_id in (0, None)}
    assert len(roots) == 6


def test_no_worker_is_504_with_the_trace_id_within_the_timeout(fake_github, monkeypatch, spans):
    """Redis is up but nobody takes the job: the gateway gives up after WORKER_TIMEOUT and takes it back."""
    redis_url = session_redis_url()
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    client.flushdb()
    gateway = load_stage_module(STAGE)
    proxy = github_module(STAGE)
    monkeypatch.setattr(proxy, "GITHUB_API_URL", fake_github.url)
    monkeypatch.setattr(proxy, "RETRY_DELAY", 0.01)
    monkeypatch.setattr(gateway, "redis_client", redis.Redis.from_url(redis_url, socket_timeout=10))
    monkeypatch.setattr(gateway, "WORKER_TIMEOUT", 0.5)
    with serve_in_thread(as_service(proxy.app, "github-proxy", ROUTER)) as proxy_url:
        monkeypatch.setattr(gateway, "PROXY_URL", proxy_url)
        with serve_in_thread(as_service(gateway.app, "gateway", ROUTER)) as url:
            started = time.monotonic()
            response = requests.get(url + "/contributors/pallets/flask", timeout=20)
            elapsed = time.monotonic() - started
    trace_id = response.headers["X-Trace-Id"]
    assert response.status_code == 504
    assert response.json() == {"error": f"no worker answered within 0.5 s (trace {trace_id})"}
    assert elapsed < 0.5 + 2 * 0.01 + 3  # the wait is bounded by WORKER_TIMEOUT (plus GitHub's two retries)
    assert client.llen("contributors:jobs") == 0  # the job was taken back: nothing piles up
    send = find(build_tree(settled(spans)), "send_clean_job")[0]
    assert send.tags["error"] is True


def test_redis_down_is_503_with_a_message(fake_github, monkeypatch, spans):
    gateway = load_stage_module(STAGE)
    closed = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(gateway, "REDIS_URL", closed)
    monkeypatch.setattr(gateway, "redis_client", redis.Redis.from_url(closed, socket_connect_timeout=1))
    with serve_stage_app(STAGE, monkeypatch, fake_github.url) as url:
        monkeypatch.setattr(gateway, "redis_client", redis.Redis.from_url(closed, socket_connect_timeout=1))
        monkeypatch.setattr(gateway, "REDIS_URL", closed)
        started = time.monotonic()
        response = requests.get(url + "/contributors/pallets/flask", timeout=20)
    assert response.status_code == 503
    assert response.json() == {"error": f"the job queue is down: Redis at {closed} (ConnectionError)"}
    assert time.monotonic() - started < 10


def test_a_malformed_job_gets_an_error_reply_and_span_and_the_worker_keeps_going(spans):
    client = redis.Redis.from_url(session_redis_url(), socket_timeout=5)
    with running_worker(STAGE):
        jobs = [
            b"not json",
            json.dumps([1, 2]),
            json.dumps({"job_id": "1", "reply_to": "contributors:reply:bad1", "stats": "nope"}),
            json.dumps({"job_id": "2", "reply_to": "contributors:reply:bad2", "stats": [{"author": 5}]}),
            json.dumps({"job_id": "3", "reply_to": "contributors:reply:good", "stats": [], "trace": "garbled"}),
        ]
        for job in jobs:
            client.lpush("contributors:jobs", job)
        replies = {key: client.brpop([f"contributors:reply:{key}"], timeout=5) for key in ["bad1", "bad2", "good"]}
        assert json.loads(replies["bad1"][1]) == {"error": "malformed job: a job needs a job_id and a list of stats"}
        assert "error" in json.loads(replies["bad2"][1])
        assert json.loads(replies["good"][1]) == {"contributors": []}  # still running after four bad jobs
    handled = [s for s in settled(spans) if s.operation_name == "handle_clean_job"]
    errors = [s for s in handled if any(t.key == "error" for t in s.tags)]
    assert len(handled) == 5 and len(errors) == 4


def test_replies_expire(spans):
    client = redis.Redis.from_url(session_redis_url(), socket_timeout=5)
    with running_worker(STAGE):
        job = {"job_id": "x", "reply_to": "contributors:reply:unread", "stats": []}
        client.lpush("contributors:jobs", json.dumps(job))
        deadline = time.monotonic() + 5
        while not client.exists("contributors:reply:unread") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert 0 < client.ttl("contributors:reply:unread") <= 60
