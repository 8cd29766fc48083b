"""Lesson 3: tags after OpenTracing's conventions, span logs, error marks and log correlation."""

from __future__ import annotations

import logging

import pytest
import requests

from tests.conftest import TOKEN, github_gives_up_soon, serve_stage_app
from tests.support.expected_trees import EXPECTED_TREES, exact
from tests.support.spans import build_tree, find, walk
from tests.support.stage_loader import load_stage_module
from workshop.lessons.expected import GITHUB_CALL_TAGS

STAGE = "step3_tags_logs"


@pytest.fixture
def app_url(fake_github, monkeypatch, spans):
    with serve_stage_app(STAGE, monkeypatch, fake_github.url, token=TOKEN) as url:
        yield url


def fetch(app_url: str, path: str, spans):
    response = requests.get(app_url + path, timeout=10)
    return response, build_tree(spans.get_spans())


def test_span_tree_is_lesson_2s(app_url, spans):
    _, root = fetch(app_url, "/contributors/pallets/flask", spans)
    assert root.tree() == EXPECTED_TREES[STAGE]


def test_github_calls_are_client_spans_with_semantic_tags(app_url, fake_github, spans):
    _, root = fetch(app_url, "/contributors/pallets/flask", spans)
    attempts = find(root, "github_request")
    url = f"{fake_github.url}/repos/pallets/flask/stats/contributors"
    for number, attempt in enumerate(attempts, 1):
        values = {"http.url": url, "github.attempt": number, "http.status_code": 202 if number < 3 else 200}
        assert attempt.tags == exact(GITHUB_CALL_TAGS, values)


def test_domain_tags(app_url, spans):
    response, root = fetch(app_url, "/contributors/pallets/flask", spans)
    assert root.tags["github.repo"] == "pallets/flask"
    clean = find(root, "clean_github_data")[0]
    assert clean.tags["contributors.count"] == len(response.json()["contributors"])
    assert "error" not in root.tags


def test_retry_and_rate_limit_are_span_logs(app_url, spans):
    _, root = fetch(app_url, "/contributors/pallets/flask", spans)
    get = find(root, "get_repo_contributors")[0]
    assert get.logs == [
        {"event": "retry", "message": "GitHub answered 202", "wait_s": 0.05},
        {"event": "retry", "message": "GitHub answered 202", "wait_s": 0.05},
    ]
    remaining = [attempt.logs[0] for attempt in find(root, "github_request")]
    assert remaining == [{"event": "rate_limit", "remaining": str(5000 - n), "limit": "5000"} for n in (1, 2, 3)]


def test_github_error_marks_the_span_where_it_happens(app_url, spans):
    response, root = fetch(app_url, "/contributors/octocat/does-not-exist", spans)
    assert response.status_code == 404
    attempt = find(root, "github_request")[0]
    assert attempt.tags["error"] is True
    assert attempt.tags["http.status_code"] == 404
    assert attempt.logs[-1] == {"event": "error", "message": "GitHub answered 404"}
    get = find(root, "get_repo_contributors")[0]
    assert get.tags["error"] is True
    assert get.logs[-1]["message"] == "repository octocat/does-not-exist not found on GitHub"
    assert "error" not in root.tags  # a 404 is not the server's fault
    assert root.tags["http.status_code"] == 404


@pytest.mark.parametrize("repo, status", [("server-error", 502), ("slow", 504), ("rate-limited", 429)])
def test_failed_requests_are_marked(app_url, spans, repo, status):
    with github_gives_up_soon(STAGE):
        response, root = fetch(app_url, f"/contributors/octocat/{repo}", spans)
    assert response.status_code == status
    assert find(root, "get_repo_contributors")[0].tags["error"] is True
    assert find(root, "github_request")[0].tags["error"] is True
    assert root.tags.get("error") is (True if status >= 500 else None)


def test_unhandled_exception_is_an_error_span(app_url, spans, monkeypatch):
    module = load_stage_module(STAGE)

    def broken(stats):
        with module.global_tracer().start_active_span("clean_github_data"):
            raise RuntimeError("boom")

    monkeypatch.setattr(module, "clean_github_data", broken)
    response, root = fetch(app_url, "/contributors/pallets/flask", spans)
    assert response.status_code == 500
    assert root.tags["error"] is True
    assert root.tags["http.status_code"] == 500
    assert {"event": "error", "message": "boom", "error.kind": "RuntimeError"} in root.logs
    clean = find(root, "clean_github_data")[0]
    assert clean.tags["error"] is True


def test_log_lines_carry_trace_and_span_ids(app_url, spans):
    """Lesson 3's filter, on a handler of the test's own that notes the ids as each record is written
    (other lessons' filters, on other handlers, label the same record objects in their own way)."""
    noted: list[tuple[str, str, str]] = []

    class Noting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            noted.append((record.getMessage(), record.trace_id, record.span_id))

    handler = Noting(level=logging.INFO)
    handler.addFilter(load_stage_module(STAGE, "tracing").TraceIdFilter())
    logger = logging.getLogger("contributors")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        _, root = fetch(app_url, "/contributors/pallets/flask", spans)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    get = find(root, "get_repo_contributors")[0]
    retries = [(trace_id, span_id) for message, trace_id, span_id in noted if "retrying" in message]
    assert retries == [(f"{root.trace_id:016x}", f"{get.span_id:016x}")] * 2
    # The log format that prints them is checked on a real process in test_stage_processes.py.


def test_token_never_in_spans_or_logs(app_url, spans, caplog, fake_github):
    with caplog.at_level(logging.DEBUG):
        for repo in ["flask", "does-not-exist", "rate-limited", "server-error", "slow", "empty"]:
            spans.clear()
            requests.get(app_url + f"/contributors/octocat/{repo}", timeout=10)
            for span in walk(build_tree(spans.get_spans())):
                text = repr(span.tags) + repr(span.logs) + span.operation
                assert TOKEN not in text and TOKEN[:12] not in text
    assert fake_github.calls()["with_token"] > 0  # it was sent to GitHub all along
    assert TOKEN not in caplog.text


def test_logs_stay_small(app_url, spans):
    with github_gives_up_soon(STAGE):  # the timeout's error, in the span's log
        fetch(app_url, "/contributors/octocat/slow", spans)
    for span in spans.get_spans():
        for log in span.logs:
            assert sum(len(str(field.vStr or "")) for field in log.fields) < 8000
