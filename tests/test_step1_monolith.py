"""Lesson 1: the untraced monolith. Its behaviour is in test_app_behaviour.py; here, what makes it lesson 1."""

from __future__ import annotations

import time

import requests

from tests.conftest import serve_stage_app
from tests.support.stage_loader import ROOT

STAGE = "step1_monolith"


def test_no_tracing_yet(fake_github, monkeypatch, spans):
    with serve_stage_app(STAGE, monkeypatch, fake_github.url) as url:
        response = requests.get(url + "/contributors/pallets/flask", timeout=10)
    assert response.status_code == 200
    assert "X-Trace-Id" not in response.headers
    assert spans.get_spans() == []
    source = (ROOT / STAGE / "app.py").read_text()
    assert "opentracing" not in source and "jaeger" not in source


def test_first_request_for_a_repo_is_slow_the_second_is_not(fake_github, monkeypatch, spans):
    """The planted problem a learner notices in lesson 1 (and explains with a trace in lesson 2)."""
    with serve_stage_app(STAGE, monkeypatch, fake_github.url) as url:
        started = time.monotonic()
        requests.get(url + "/contributors/pallets/flask", timeout=10)
        first = time.monotonic() - started
        assert fake_github.calls()["total"] == 3
        requests.get(url + "/contributors/pallets/flask", timeout=10)
        assert fake_github.calls()["total"] == 4  # GitHub has the stats now: one call, no waiting
    assert first >= 2 * 0.05  # two waits of RETRY_DELAY (shortened for tests) after GitHub's 202s
