"""Lesson 7: lesson 6's OpenTracing code on OpenTelemetry's SDK, through the OpenTracing shim. In memory:
OpenTelemetry's spans (through the shim), the trace context and baggage as W3C headers, over HTTP and
inside the Redis job."""

from __future__ import annotations

import json
import re

import pytest
import redis
import requests

from tests.conftest import ROUTER, TOKEN, serve_stage_app, session_redis_url
from tests.support.expected_trees import EXPECTED_TREES
from tests.support.spans import build_tree, find, settled, walk
from tests.support.stage_loader import load_stage_module
from tests.support.wire_capture import headers_to_the_proxy, job_as_queued

STAGE = "step7_opentelemetry_shim"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[13]")  # sampled (03: and a random trace id)


@pytest.fixture
def app_url(fake_github, monkeypatch, otel_spans):
    with serve_stage_app(STAGE, monkeypatch, fake_github.url, token=TOKEN) as url:
        yield url


def fetch(url: str, path: str, spans, **headers: str):
    response = requests.get(url + path, headers=headers, timeout=20)
    return response, build_tree(settled(spans))


def test_same_tree_as_lesson_6_from_opentelemetry_spans(app_url, otel_spans):
    response, root = fetch(app_url, "/contributors/pallets/flask", otel_spans)
    assert response.status_code == 200
    assert root.tree() == EXPECTED_TREES["step6_baggage"] == EXPECTED_TREES[STAGE]
    assert all(type(span).__module__ == "opentelemetry.sdk.trace" for span in settled(otel_spans))
    assert response.headers["X-Trace-Id"] == f"{root.trace_id:032x}"  # W3C trace ids are 128 bits


def test_tags_and_logs_are_attributes_and_events(app_url, otel_spans):
    _, root = fetch(app_url, "/contributors/pallets/flask", otel_spans)
    assert root.tags["github.repo"] == "pallets/flask" and root.tags["http.status_code"] == 200
    (attempts,) = [span for span in find(root, "get_repo_contributors")]
    assert [log["event"] for log in attempts.logs] == ["retry", "retry"]  # OpenTracing logs: span events
    assert [span.tags["github.attempt"] for span in find(root, "github_request")] == [1, 2, 3]


def test_baggage_is_visible_in_every_service(app_url, otel_spans):
    _, root = fetch(app_url, "/contributors/pallets/flask?top=2", otel_spans, **{"X-Client": "curl-test"})
    set_at_edge = [log for log in root.logs if log.get("event") == "baggage"]
    assert {(log["key"], log["value"]) for log in set_at_edge} == {("client", "curl-test"), ("contributors.top", "2")}
    served = find(root, "stats")[0]
    assert served.service == "github-proxy" and served.tags["baggage.client"] == "curl-test"
    handled = find(root, "handle_clean_job")[0]
    assert handled.service == "worker"
    assert handled.tags["baggage.client"] == "curl-test" and handled.tags["baggage.contributors.top"] == 2


def test_baggage_changes_what_the_worker_does(app_url, otel_spans):
    everyone, _ = fetch(app_url, "/contributors/pallets/flask", otel_spans)
    otel_spans.clear()
    top_two, _ = fetch(app_url, "/contributors/pallets/flask?top=2", otel_spans)
    assert top_two.json()["contributors"] == everyone.json()["contributors"][:2]


def test_oversized_baggage_is_dropped_and_client_baggage_is_not_let_in(app_url, otel_spans):
    response, root = fetch(
        app_url,
        "/contributors/pallets/flask",
        otel_spans,
        **{"X-Client": "x" * 100, "baggage": "contributors.top=1,client=smuggled"},
    )
    assert response.status_code == 200 and len(response.json()["contributors"]) > 1
    dropped = [log for log in root.logs if log.get("event") == "baggage.dropped"]
    assert dropped == [{"event": "baggage.dropped", "key": "client", "bytes": 106, "limit": 64}]
    assert find(root, "stats")[0].tags["baggage.client"] == "-"
    assert find(root, "handle_clean_job")[0].tags["baggage.client"] == "-"


def test_w3c_headers_to_the_proxy(monkeypatch, otel_spans):
    """What the gateway sends the proxy: a recording stand-in shows the headers."""
    seen, response = headers_to_the_proxy(
        STAGE, monkeypatch, "/contributors/pallets/flask?top=3", {"X-Client": "my laptop"}
    )
    assert TRACEPARENT.fullmatch(seen["traceparent"]), seen
    trace_id, parent_id = TRACEPARENT.fullmatch(seen["traceparent"]).groups()
    assert trace_id == response.headers["X-Trace-Id"]
    root = build_tree(settled(otel_spans))
    assert parent_id == f"{find(root, 'call_github_proxy')[0].span_id:016x}"
    assert dict(item.split("=") for item in seen["baggage"].split(",")) == {
        "client": "my+laptop",
        "contributors.top": "3",
    }  # the items are URL-encoded
    assert not any(key.startswith("uber") for key in seen)
    assert not any(TOKEN in value for value in seen.values())


def test_w3c_context_inside_the_redis_job(fake_github, monkeypatch, otel_spans):
    """A stand-in worker records the job as it arrives: lesson 5's fields, `traceparent` in `trace`."""
    job, response = job_as_queued(STAGE, monkeypatch, fake_github.url, "/contributors/a/b?top=5", {"X-Client": "ci"})
    assert set(job) == {"job_id", "reply_to", "stats", "trace"}
    assert set(job["trace"]) == {"traceparent", "baggage"}
    trace_id, parent_id = TRACEPARENT.fullmatch(job["trace"]["traceparent"]).groups()
    root = build_tree(settled(otel_spans))
    assert trace_id == response.headers["X-Trace-Id"]
    assert parent_id == f"{find(root, 'send_clean_job')[0].span_id:016x}"
    assert sorted(job["trace"]["baggage"].split(",")) == ["client=ci", "contributors.top=5"]


@pytest.mark.parametrize("trace_field", [None, "garbage", {"traceparent": "00-zz-zz-01"}, {"traceparent": "x" * 10**5}])
def test_a_job_with_a_missing_or_garbled_context_starts_a_new_trace(trace_field, otel_spans):
    worker = load_stage_module(STAGE, "worker")
    client = redis.Redis.from_url(session_redis_url(), socket_timeout=5)
    message = json.dumps({"job_id": "j", "reply_to": "contributors:reply:j", "stats": [], "trace": trace_field})
    ROUTER.serve_as("worker")
    worker.handle_clean_job(client, message)
    assert json.loads(client.rpop("contributors:reply:j")) == {"contributors": []}
    (root,) = [span for span in walk(build_tree(settled(otel_spans))) if span.operation == "handle_clean_job"]
    assert root.parent_id is None and root.tags["baggage.client"] == "-"


def test_no_secret_in_spans_or_baggage(app_url, otel_spans):
    fetch(app_url, "/contributors/pallets/flask?top=3", otel_spans, **{"X-Client": "ci"})
    for span in settled(otel_spans):
        assert TOKEN not in span.to_json()


def test_a_jaeger_header_is_not_read_any_more(app_url, otel_spans):
    """The README's try-next: lesson 6's `uber-trace-id` starts a new trace here."""
    response, root = fetch(app_url, "/contributors/pallets/flask", otel_spans, **{"uber-trace-id": "1:2:0:1"})
    assert response.status_code == 200 and root.parent_id is None and root.trace_id != 1
