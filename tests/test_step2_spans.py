"""Lesson 2: one trace per request, with a span for each step of the work."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import serve_stage_app
from tests.support.expected_trees import EXPECTED_TREES
from tests.support.spans import build_tree, find

STAGE = "step2_spans"


@pytest.fixture
def app_url(fake_github, monkeypatch, spans):
    with serve_stage_app(STAGE, monkeypatch, fake_github.url) as url:
        yield url


def test_span_tree_shows_the_retry_staircase(app_url, spans):
    response = requests.get(app_url + "/contributors/pallets/flask", timeout=10)
    assert response.status_code == 200
    root = build_tree(spans.get_spans())
    assert root.tree() == EXPECTED_TREES[STAGE]
    attempts = find(root, "github_request")
    for earlier, later in zip(attempts, attempts[1:], strict=False):
        assert later.start - earlier.end >= 0.05  # the wait after each 202 is the gap between the steps
    assert root.service == "contributors"


def test_request_span_has_flask_opentracing_tags(app_url, spans):
    requests.get(app_url + "/contributors/pallets/flask", timeout=10)
    root = build_tree(spans.get_spans())
    assert root.tags["span.kind"] == "server"
    assert root.tags["component"] == "Flask"
    assert root.tags["http.method"] == "GET"
    assert root.tags["http.url"] == app_url + "/contributors/pallets/flask"
    assert root.tags["http.status_code"] == 200


def test_every_answer_names_its_trace(app_url, spans):
    for path in ["/contributors/pallets/flask", "/contributors/octocat/does-not-exist", "/nowhere"]:
        spans.clear()
        response = requests.get(app_url + path, timeout=10)
        root = build_tree(spans.get_spans())
        assert response.headers["X-Trace-Id"] == f"{root.trace_id:016x}"


def test_unrouted_request_span_is_named(app_url, spans):
    requests.get(app_url + "/nowhere", timeout=10)
    root = build_tree(spans.get_spans())
    assert root.tree() == ("contributors", "GET (no route)", [])
    assert root.tags["http.status_code"] == 404


def test_exception_through_a_span_marks_it(app_url, spans):
    requests.get(app_url + "/contributors/octocat/does-not-exist", timeout=10)
    root = build_tree(spans.get_spans())
    assert root.tree() == (
        "contributors",
        "contributors",
        [("contributors", "get_repo_contributors", [("contributors", "github_request", [])])],
    )
    failed = find(root, "get_repo_contributors")[0]
    assert failed.tags["error"] is True  # opentracing's scope marks a span an exception leaves
    assert failed.logs[0]["event"] == "error"
    assert failed.logs[0]["message"] == "repository octocat/does-not-exist not found on GitHub"
