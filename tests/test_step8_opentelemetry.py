"""Lesson 8: native OpenTelemetry. In memory: the instrumentations' spans and the lesson's own, with
their kinds, attributes, events and status; W3C headers (and Jaeger's) over HTTP and inside the Redis
job; baggage; `traceresponse`; log correlation through the logging instrumentation."""

from __future__ import annotations

import logging
import re

import pytest

from tests.conftest import TOKEN, instrumented_libraries, serve_stage_app, session_redis_url, untraced_get
from tests.support.expected_trees import EXPECTED_TREES, canonical
from tests.support.spans import build_tree, find, settled
from tests.support.wire_capture import headers_to_the_proxy, job_as_queued
from workshop.lessons.expected import NATIVE_KINDS

STAGE = "step8_opentelemetry"
W3C = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[13]")


@pytest.fixture
def app_url(fake_github, monkeypatch, otel_spans):
    with serve_stage_app(STAGE, monkeypatch, fake_github.url, token=TOKEN) as url:
        yield url


def fetch(url: str, path: str, spans, **headers: str):
    response = untraced_get(url + path, headers=headers, timeout=20)
    return response, build_tree(settled(spans))


def test_the_exact_tree_kinds_and_statuses(app_url, otel_spans):
    response, root = fetch(app_url, "/contributors/pallets/flask", otel_spans)
    assert response.status_code == 200
    assert canonical(root.tree()) == canonical(EXPECTED_TREES[STAGE])
    kinds = {(span.service, span.operation): span.tags.get("span.kind") for span in walk_all(root)}
    assert kinds == NATIVE_KINDS  # workshop/lessons/expected.py, which make check-step8 reads too
    assert not any(span.tags.get("error") for span in walk_all(root))


def walk_all(root):
    yield root
    for child in root.children:
        yield from walk_all(child)


def test_attributes_follow_the_semantic_conventions_and_events_tell_the_retries(app_url, otel_spans):
    _, root = fetch(app_url, "/contributors/pallets/flask", otel_spans)
    assert root.tags["http.request.method"] == "GET" and root.tags["http.route"] == "/contributors/<owner>/<repo>"
    assert root.tags["http.response.status_code"] == 200 and root.tags["github.repo"] == "pallets/flask"
    (send,) = find(root, "send_clean_job")
    assert send.tags["messaging.system"] == "redis" and send.tags["messaging.destination.name"] == "contributors:jobs"
    assert send.tags["messaging.operation.type"] == "send" and len(send.tags["messaging.message.id"]) == 32
    (handled,) = find(root, "handle_clean_job")
    assert handled.tags["messaging.message.id"] == send.tags["messaging.message.id"]
    (attempts,) = find(root, "get_repo_contributors")
    assert [log["event"] for log in attempts.logs] == ["github.response", "retry"] * 2 + ["github.response"]
    answers = [log for log in attempts.logs if log["event"] == "github.response"]
    assert [(a["github.attempt"], a["http.response.status_code"]) for a in answers] == [(1, 202), (2, 202), (3, 200)]
    github_calls = [span for span in find(root, "GET") if span.service == "github-proxy"]
    assert all(span.tags["url.full"].endswith("/repos/pallets/flask/stats/contributors") for span in github_calls)


def test_traceresponse_and_x_trace_id_name_the_trace(app_url, otel_spans):
    response, root = fetch(app_url, "/contributors/pallets/flask", otel_spans)
    trace_id, span_id = W3C.fullmatch(response.headers["traceresponse"]).groups()
    assert trace_id == response.headers["X-Trace-Id"] == f"{root.trace_id:032x}"
    assert span_id == f"{root.span_id:016x}"


def test_a_server_error_marks_the_span(app_url, otel_spans):
    response, root = fetch(app_url, "/contributors/octocat/server-error", otel_spans)
    assert response.status_code == 502 and root.tags["error"] is True  # the gateway's answer is a 5xx


def test_baggage_reaches_the_proxy_and_the_worker_and_is_bounded(app_url, otel_spans):
    _, root = fetch(app_url, "/contributors/pallets/flask?top=2", otel_spans, **{"X-Client": "curl-test"})
    assert {(log["key"], log["value"]) for log in root.logs if log["event"] == "baggage"} == {
        ("client", "curl-test"),
        ("contributors.top", "2"),
    }
    assert find(root, "GET /stats/<owner>/<repo>")[0].tags["baggage.client"] == "curl-test"
    (handled,) = find(root, "handle_clean_job")
    assert handled.tags["baggage.client"] == "curl-test" and handled.tags["baggage.contributors.top"] == 2
    otel_spans.clear()
    response, root = fetch(
        app_url,
        "/contributors/pallets/flask",
        otel_spans,
        **{"X-Client": "x" * 100, "baggage": "contributors.top=1", "uberctx-contributors.top": "1"},
    )
    assert len(response.json()["contributors"]) > 1  # no client baggage got in, by either header
    assert [log for log in root.logs if log["event"] == "baggage.dropped"] == [
        {"event": "baggage.dropped", "key": "client", "bytes": 106, "limit": 64}
    ]
    assert find(root, "handle_clean_job")[0].tags["baggage.client"] == "-"


def test_w3c_and_jaeger_headers_to_the_proxy(monkeypatch, otel_spans):
    with instrumented_libraries(STAGE):
        seen, response = headers_to_the_proxy(
            STAGE, monkeypatch, "/contributors/pallets/flask?top=3", {"X-Client": "me"}
        )
    trace_id, _ = W3C.fullmatch(seen["traceparent"]).groups()
    assert trace_id == response.headers["X-Trace-Id"]
    assert sorted(seen["baggage"].split(",")) == ["client=me", "contributors.top=3"]
    assert seen["uber-trace-id"].startswith(f"{trace_id}:")  # Jaeger's header too, for jaeger-client services
    assert seen["uberctx-client"] == "me"
    assert not any(TOKEN in value for value in seen.values())


def test_the_job_carries_traceparent_and_uber_trace_id(fake_github, monkeypatch, otel_spans):
    session_redis_url()  # started (if this test is the first to need it) before the instrumentation: no PING span
    with instrumented_libraries(STAGE):
        job, response = job_as_queued(
            STAGE, monkeypatch, fake_github.url, "/contributors/a/b?top=5", {"X-Client": "ci"}
        )
    assert set(job) == {"job_id", "reply_to", "stats", "trace"}
    trace_id, parent = W3C.fullmatch(job["trace"]["traceparent"]).groups()
    assert trace_id == response.headers["X-Trace-Id"]
    root = build_tree(settled(otel_spans))
    assert parent == f"{find(root, 'send_clean_job')[0].span_id:016x}"
    assert job["trace"]["uber-trace-id"].startswith(f"{trace_id}:{parent}:")
    assert sorted(job["trace"]["baggage"].split(",")) == ["client=ci", "contributors.top=5"]


def test_log_records_carry_the_ids(app_url, otel_spans, caplog):
    with caplog.at_level(logging.INFO, logger="github-proxy"):
        response, root = fetch(app_url, "/contributors/pallets/flask", otel_spans)
    retries = [r for r in caplog.records if r.name == "github-proxy" and "retrying" in r.getMessage()]
    assert retries and {r.otelTraceID for r in retries} == {response.headers["X-Trace-Id"]}
    assert {r.otelSpanID for r in retries} == {f"{find(root, 'get_repo_contributors')[0].span_id:016x}"}


def test_no_secret_in_any_span(app_url, otel_spans):
    fetch(app_url, "/contributors/pallets/flask?top=3", otel_spans, **{"X-Client": "ci"})
    for span in settled(otel_spans):
        assert TOKEN not in span.to_json()
