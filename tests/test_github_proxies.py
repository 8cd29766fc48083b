"""Lesson 9 rewrites the github-proxy in Node.js: the same requests get the same answers from lesson 8's
Python proxy and lesson 9's Node one. Every case runs against both, on the same kind of fake GitHub."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.conftest import TOKEN, github_module
from tests.support.lesson9_tools import NODE_PROXY, require_lesson9_tools
from tests.support.processes import distinct_free_ports, wait_http
from tests.support.service_router import as_service
from workshop.fake_github import FakeGitHubConfig, contributors_for, create_app
from workshop.ports import free_port
from workshop.serving import serve_in_thread

TIMEOUT = 0.5  # the proxies' GITHUB_TIMEOUT here
RETRY_DELAY = 0.05


class Switchboard:
    """One address for GitHub whose fake is replaced test by test (a Node process reads its URL once)."""

    def __init__(self) -> None:
        self.app = create_app(FakeGitHubConfig())

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@dataclass
class Proxy:
    kind: str
    url: str
    github: Switchboard
    github_url: str

    def fake(self, **config) -> FakeGitHubConfig:
        """A fresh fake GitHub behind the switchboard; returns its config (change it to change the fake)."""
        settings = FakeGitHubConfig(**{"computing_calls": 2, "slow_seconds": 2.0, **config})
        self.github.app = create_app(settings)
        return settings

    def calls(self) -> dict:
        return requests.get(self.github_url + "/", timeout=5).json()["calls"]

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=10)


@contextlib.contextmanager
def node_proxy(github_url: str) -> Iterator[str]:
    """Lesson 9's Node proxy as a process; its spans go to a closed port (dropped, as with no store)."""
    port = distinct_free_ports(1)[0]  # (a port 0 pick is another's until node binds it: another clone's)
    env = {
        **os.environ,
        "PROXY_PORT": str(port),
        "GITHUB_API_URL": github_url,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_TIMEOUT": str(TIMEOUT),
        "GITHUB_RETRY_DELAY": str(RETRY_DELAY),
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    process = subprocess.Popen(
        ["node", "server.js"], cwd=NODE_PROXY, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
        assert "    at " not in output, output  # no stack trace in its log either


@contextlib.contextmanager
def python_proxy(github_url: str) -> Iterator[str]:
    """Lesson 8's Python proxy, served from a thread, with the same settings."""
    module = github_module("step8_opentelemetry")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (
            ("GITHUB_API_URL", github_url),
            ("GITHUB_TOKEN", TOKEN),
            ("GITHUB_TIMEOUT", TIMEOUT),
            ("RETRY_DELAY", RETRY_DELAY),
        ):
            patch.setattr(module, name, value)
        from tests.conftest import ROUTER

        with serve_in_thread(as_service(module.app, "github-proxy", ROUTER)) as url:
            yield url


@pytest.fixture(scope="module", params=["python", "node"])
def proxy(request) -> Iterator[Proxy]:
    if request.param == "node":
        require_lesson9_tools()
    board = Switchboard()
    with serve_in_thread(board) as github_url:
        serve = node_proxy if request.param == "node" else python_proxy
        with serve(github_url) as url:
            yield Proxy(request.param, url, board, github_url)


def test_answers_github_s_stats_after_its_202s_with_the_token(proxy):
    proxy.fake()
    response = proxy.get("/stats/pallets/flask")
    assert response.status_code == 200
    assert response.json() == contributors_for("pallets", "flask")
    assert proxy.calls() == {"total": 3, "with_token": 3}


@pytest.mark.parametrize(
    "repo, config, status, body, retry_after",
    [
        ("octocat/does-not-exist", {}, 404, {"error": "repository octocat/does-not-exist not found on GitHub"}, None),
        ("octocat/server-error", {}, 502, {"error": "GitHub answered 500"}, None),
        ("octocat/empty", {}, 200, [], None),
        (
            "pallets/flask",
            {"computing_calls": 100},
            503,
            {"error": "GitHub is still computing the stats of pallets/flask: try again soon"},
            "5",
        ),
    ],
)
def test_github_s_answers_are_mapped_the_same(proxy, repo, config, status, body, retry_after):
    proxy.fake(**config)
    response = proxy.get(f"/stats/{repo}")
    assert (response.status_code, response.json(), response.headers.get("Retry-After")) == (status, body, retry_after)


def test_rate_limits_are_429_with_retry_after(proxy):
    proxy.fake()
    response = proxy.get("/stats/octocat/rate-limited")
    assert response.status_code == 429
    assert response.json()["error"].startswith("GitHub's rate limit is used up: try again in ")
    assert int(response.headers["Retry-After"]) >= 1
    config = proxy.fake(computing_calls=0, rate_limit=1)
    assert proxy.get("/stats/a/one").status_code == 200
    response = proxy.get("/stats/a/two")
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 3000
    assert config.rate_limit == 1


def test_a_slow_github_is_504_at_the_proxy_s_timeout(proxy):
    proxy.fake()
    started = time.monotonic()
    response = proxy.get("/stats/octocat/slow")
    assert response.status_code == 504
    assert response.json() == {"error": "GitHub did not answer within 0.5 s"}
    assert time.monotonic() - started < 1.8  # gave up at its timeout, not when GitHub answered


@pytest.mark.parametrize(
    "path, message",
    [
        ("/stats/-octocat/flask", "invalid owner '-octocat'"),
        ("/stats/octo--cat/flask", "invalid owner 'octo--cat'"),
        ("/stats/" + "a" * 40 + "/flask", "invalid owner 'aaaa"),
        ("/stats/octo_cat/flask", "invalid owner 'octo_cat'"),
        ("/stats/octocat/%2E%2E", "invalid repository '..'"),
        ("/stats/octocat/fl%20ask", "invalid repository 'fl ask'"),
        ("/stats/octocat/" + "r" * 101, "invalid repository 'rrrr"),
        ("/stats/octocat/fl%3Cscript%3E", "invalid repository 'fl<script>'"),
        ("/stats/octo%0Acat/flask", "invalid owner 'octo\\ncat'"),
        ("/stats/octocat/fl%7Fask", "invalid repository 'fl\\x7fask'"),
        ("/stats/octocat/fl%E2%80%8Bask", "invalid repository 'fl\\u200bask'"),
        ("/stats/octo'cat/flask", 'invalid owner "octo\'cat"'),
    ],
)
def test_invalid_names_are_400_and_never_reach_github(proxy, path, message):
    proxy.fake()
    response = proxy.get(path)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert proxy.calls()["total"] == 0


def test_unknown_routes_and_methods_answer_json(proxy):
    for path in ("/STATS/pallets/flask", "/stats/pallets/flask/"):
        assert proxy.get(path).status_code == 404, path
    assert proxy.get("/stats/a%2Fb/flask").status_code == 404  # Flask routes the decoded path; Express agrees
    response = proxy.get("/stats/%FF/flask")  # not UTF-8 once decoded
    assert response.status_code == 400 and "error" in response.json()
    response = proxy.get("/nothing/here")
    assert (response.status_code, response.json()) == (404, {"error": "no such route: try /stats/<owner>/<repo>"})
    response = requests.post(proxy.url + "/stats/pallets/flask", timeout=5)
    assert response.status_code == 405 and "not allowed" in response.json()["error"]


def test_an_unreachable_github_is_502_naming_it(proxy):
    closed = f"http://127.0.0.1:{free_port()}"
    serve = node_proxy if proxy.kind == "node" else python_proxy
    with serve(closed) as url:
        response = requests.get(url + "/stats/pallets/flask", timeout=10)
    assert (response.status_code, response.json()) == (502, {"error": f"cannot connect to GitHub at {closed}"})


# --- what the servers themselves answer (before any route): both proxies as real processes ---------------------

NOT_ALLOWED = {"error": "The method is not allowed for the requested URL: only GET is."}
NO_ROUTE = {"error": "no such route: try /stats/<owner>/<repo>"}
SAME = [
    (b"OPTIONS /stats/pallets/flask HTTP/1.1\r\nHost: x\r\n\r\n", 405, NOT_ALLOWED),
    (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 405, NOT_ALLOWED),
    (b"HEAD /stats/pallets/flask HTTP/1.1\r\nHost: x\r\n\r\n", 405, None),
    (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, NOT_ALLOWED),
    (b"GET /stats/pallets/flask HTTP/2.0\r\nHost: x\r\n\r\n", 505, {"error": "http version not supported"}),
    (b"GET /stats/a%2Fb/flask HTTP/1.1\r\nHost: x\r\n\r\n", 404, NO_ROUTE),
    (
        b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        431,
        {"error": "request header fields too large"},
    ),
    (b"\x16\x03\x01 hello\r\n\r\n", 400, {"error": "bad request"}),
]


@pytest.fixture(scope="module")
def both_proxies() -> Iterator[dict[str, str]]:
    """Lesson 8's Python proxy (`python github_proxy.py`, with serving.py) and lesson 9's Node one."""
    from tests.support.processes import stage_processes

    require_lesson9_tools()
    with (
        serve_in_thread(create_app(FakeGitHubConfig(computing_calls=0))) as github,
        stage_processes("step8_opentelemetry", github, {"otlp_http": free_port()}, only={"github-proxy"}) as python,
        node_proxy(github) as node,
    ):
        yield {"python": python.proxy_url, "node": node}


def raw_answer(url: str, request: bytes) -> tuple[int, object]:
    """Send `request` as bytes; the answer's status and JSON body (None if it has none)."""
    import json
    import socket

    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        expected = (lambda: 0) if request.startswith(b"HEAD ") else (lambda: length(answer))  # HEAD: no body
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < expected():
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body.strip() else None


def length(answer: bytes) -> int:
    for line in answer.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


@pytest.mark.parametrize("request_bytes, status, body", SAME, ids=[r[:20].decode("latin-1") for r, _, _ in SAME])
def test_the_servers_refuse_the_same_requests_the_same_way(both_proxies, request_bytes, status, body):
    """Before: OPTIONS 200 in Python, 405 in Node; %2F 404 / 400; HTTP/2.0 an HTML 505 without a status line
    in Python, 200 in Node; CONNECT: Node closed the connection; Python's refusals were HTML pages."""
    answers = {kind: raw_answer(url, request_bytes) for kind, url in both_proxies.items()}
    assert answers == {"python": (status, body), "node": (status, body)}
