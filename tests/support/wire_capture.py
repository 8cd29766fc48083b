"""What a lesson's gateway puts on the wire, caught by stand-ins: the headers of its call to the proxy,
and the job it queues for the worker. Lessons 6 to 8 compare what travels (uber-trace-id, traceparent,
baggage) with the spans they made."""

from __future__ import annotations

import json
import threading

import pytest
import redis
import requests
from flask import Flask, jsonify
from flask import request as flask_request
from opentelemetry.instrumentation.utils import suppress_instrumentation

from tests.conftest import ROUTER, session_redis_url, untraced_get
from tests.support.service_router import as_service
from tests.support.stage_loader import load_stage_module
from workshop.serving import serve_in_thread


def headers_to_the_proxy(
    stage: str, monkeypatch: pytest.MonkeyPatch, path: str, headers: dict[str, str]
) -> tuple[dict[str, str], requests.Response]:
    """The headers (lower-cased) of the gateway's call to a recording stand-in for the proxy, which
    answers 502; and the gateway's answer to `GET path`."""
    seen: dict[str, str] = {}
    recorder = Flask("recorder")

    @recorder.get("/stats/<owner>/<repo>")
    def record(owner, repo):
        seen.update({k.lower(): v for k, v in flask_request.headers.items()})
        return jsonify({"error": "recorded"}), 502

    gateway = load_stage_module(stage)
    with serve_in_thread(recorder) as proxy_url:
        monkeypatch.setattr(gateway, "PROXY_URL", proxy_url)
        with serve_in_thread(as_service(gateway.app, "gateway", ROUTER)) as url:
            response = untraced_get(url + path, headers=headers, timeout=10)
    return seen, response


def job_as_queued(
    stage: str, monkeypatch: pytest.MonkeyPatch, github_url: str, path: str, headers: dict[str, str]
) -> tuple[dict, requests.Response]:
    """The job the gateway queues for `GET path` (with the real proxy, on `github_url`), as a stand-in
    worker takes it from Redis, answering it with no contributors; and the gateway's answer."""
    client = redis.Redis.from_url(session_redis_url(), socket_timeout=10)
    jobs = []

    def stand_in_worker() -> None:
        with suppress_instrumentation():  # the stand-in's Redis calls are not the app's spans
            _, message = client.brpop(["contributors:jobs"], timeout=10)
            jobs.append(json.loads(message))
            client.lpush(jobs[-1]["reply_to"], json.dumps({"contributors": []}))

    with suppress_instrumentation():
        client.flushdb()
    thread = threading.Thread(target=stand_in_worker, daemon=True)
    thread.start()
    gateway, github_proxy = load_stage_module(stage), load_stage_module(stage, "github_proxy")
    monkeypatch.setattr(gateway, "redis_client", redis.Redis.from_url(session_redis_url(), socket_timeout=15))
    monkeypatch.setattr(github_proxy, "GITHUB_API_URL", github_url)
    monkeypatch.setattr(github_proxy, "RETRY_DELAY", 0.01)
    with serve_in_thread(as_service(github_proxy.app, "github-proxy", ROUTER)) as proxy:
        monkeypatch.setattr(gateway, "PROXY_URL", proxy)
        with serve_in_thread(as_service(gateway.app, "gateway", ROUTER)) as url:
            response = untraced_get(url + path, headers=headers, timeout=20)
    thread.join(timeout=10)
    assert response.status_code == 200, response.text
    (job,) = jobs
    return job, response
