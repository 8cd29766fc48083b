"""Lesson 6: baggage set at the edge, read across HTTP (the proxy) and across Redis (the worker)."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import TOKEN, serve_stage_app
from tests.support.expected_trees import EXPECTED_TREES
from tests.support.spans import build_tree, find, settled
from tests.support.wire_capture import headers_to_the_proxy, job_as_queued

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
    seen, _ = headers_to_the_proxy(STAGE, monkeypatch, "/contributors/pallets/flask?top=3", {"X-Client": "my laptop"})
    assert seen["uberctx-client"] == "my%20laptop"  # URL-encoded
    assert seen["uberctx-contributors.top"] == "3"
    assert "uber-trace-id" in seen
    assert not any(TOKEN in value for value in seen.values())


def test_baggage_crosses_redis_without_changing_the_message(fake_github, monkeypatch, spans):
    """A stand-in worker records the job as it arrives: the same fields as lesson 5, baggage in `trace`."""
    job, _ = job_as_queued(STAGE, monkeypatch, fake_github.url, "/contributors/a/b?top=5", {"X-Client": "ci"})
    assert set(job) == {"job_id", "reply_to", "stats", "trace"}  # lesson 5's message, unchanged
    assert job["trace"]["uberctx-client"] == "ci" and job["trace"]["uberctx-contributors.top"] == "5"
    assert "uber-trace-id" in job["trace"]


def test_no_secret_in_baggage(app_url, spans):
    _, root = fetch(app_url, "/contributors/pallets/flask?top=3", spans, **{"X-Client": "ci"})
    for span in settled(spans):
        baggage = span.context.baggage
        assert set(baggage) <= {"client", "contributors.top"}
        assert not any(TOKEN in value for value in baggage.values())
