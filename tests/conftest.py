from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import opentracing
import pytest
import requests
from jaeger_client import Tracer
from jaeger_client.reporter import InMemoryReporter
from jaeger_client.sampler import ConstSampler

from tests.stage_loader import load_stage_module
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.serving import serve_in_thread

TOKEN = "ghp_SECRETtokenNEVERinAspan0123456789"  # a made-up token, looked for everywhere it must not be


class ClearableReporter(InMemoryReporter):
    def clear(self) -> None:
        with self.lock:
            self.spans.clear()


@pytest.fixture(scope="session")
def memory_reporter() -> ClearableReporter:
    """One in-memory tracer for the session, installed as the global tracer the stages ask for.

    (flask-opentracing keeps the first tracer it gets, so the tracer stays; the spans are cleared per test.)
    """
    reporter = ClearableReporter()
    tracer = Tracer(service_name="contributors", reporter=reporter, sampler=ConstSampler(True))
    opentracing.set_global_tracer(tracer)
    return reporter


@pytest.fixture
def spans(memory_reporter: ClearableReporter) -> ClearableReporter:
    memory_reporter.clear()
    return memory_reporter


@dataclass
class FakeGitHub:
    url: str
    config: FakeGitHubConfig

    def calls(self) -> dict:
        return requests.get(self.url + "/", timeout=5).json()["calls"]


@pytest.fixture
def github_config() -> FakeGitHubConfig:
    """Override in a test module (or change in a test before `fake_github` starts) to change the fake."""
    return FakeGitHubConfig(computing_calls=2, slow_seconds=2.0)


@pytest.fixture
def fake_github(github_config: FakeGitHubConfig) -> Iterator[FakeGitHub]:
    with serve_in_thread(create_app(github_config)) as url:
        yield FakeGitHub(url, github_config)


def serve_stage_app(folder: str, monkeypatch: pytest.MonkeyPatch, github_url: str, token: str = ""):
    """Serve a stage's app from a thread on a free port, pointed at `github_url`, with short waits."""
    module = load_stage_module(folder)
    monkeypatch.setattr(module, "GITHUB_API_URL", github_url)
    monkeypatch.setattr(module, "GITHUB_TOKEN", token)
    monkeypatch.setattr(module, "RETRY_DELAY", 0.05)
    monkeypatch.setattr(module, "GITHUB_TIMEOUT", 0.5)
    return serve_in_thread(module.app)
