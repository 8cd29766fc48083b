"""What a fault probe broke in the lessons' HTTP servers (every lesson's serving.py, copied verbatim), over
the real wire: the lesson's processes, raw sockets, the fake GitHub counting its calls, a trace store.
(Each test here failed before serving.py turned these away.)"""

from __future__ import annotations

import socket
import time

import pytest
import redis
import requests

from tests.conftest import session_redis_url
from tests.support.processes import stage_processes
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.serving import serve_in_thread
from workshop.tracestore.collector import CollectorConfig, running_collector

STAGES = ["step6_baggage", "step8_opentelemetry"]  # jaeger-client and OpenTelemetry; serving.py is the same


@pytest.fixture(scope="module", params=STAGES)
def lesson(request):
    """The lesson's processes, on a fake GitHub (no 202s) and a trace store of their own, shared by the tests
    of this module (each a fault the same processes must take and go on serving; GitHub's calls are counted
    from where a test starts)."""
    with (
        serve_in_thread(create_app(FakeGitHubConfig(computing_calls=0, rate_limit=10_000))) as github,
        running_collector(CollectorConfig.on_free_ports()) as store,
    ):
        redis_url = session_redis_url()
        redis.Redis.from_url(redis_url).flushdb()
        with stage_processes(request.param, github, store.ports, redis_url=redis_url) as app:
            app.github = github
            yield app


def github_calls(app) -> int:
    return requests.get(app.github + "/", timeout=5).json()["calls"]["total"]


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def exchange(url: str, data: bytes, then: bytes = b"", timeout: float = 5) -> tuple[bytes, float]:
    """Send `data` (and `then`, 0.2 s later) on one connection, keep it open, and read until the server
    closes it: what it answered, and how long after the first byte it closed (`timeout` if it did not)."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(data)
        if then:
            time.sleep(0.2)
            sock.sendall(then)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            return answer, timeout
        return answer, time.monotonic() - started


CUT_OFF = [
    b"GET /contributors/pallets/flask HTTP/1.1",  # within the request line
    b"GET /contributors/pallets/flask HTTP/1.1\r\n",
    b"GET /contributors/pallets/flask HTTP/1.1\r\nHost: localhost\r\nX-Client: al",
    b"GET /contributors/pallets/flask HTTP/1.1\r\nHost: localhost\r\n",
]


def test_a_request_cut_off_before_its_headers_end_is_not_run(lesson):
    """Before: werkzeug read the end of the stream as the end of the headers, and ran the request in full."""
    before = github_calls(lesson)
    for url in (lesson.url, lesson.proxy_url):
        for _ in range(5):
            for partial in CUT_OFF:
                with socket.create_connection(address(url), timeout=5) as sock:
                    sock.sendall(partial.replace(b"/contributors/", b"/stats/") if url == lesson.proxy_url else partial)
    time.sleep(1)  # what a request run in full would take here
    assert github_calls(lesson) == before
    response = requests.get(lesson.url + "/contributors/octocat/cut-off", timeout=20)  # and it still serves
    assert response.status_code == 200 and github_calls(lesson) == before + 1


def test_a_post_with_a_body_is_answered_and_the_connection_closed(lesson):
    """Before: after its 405, werkzeug waited to read 10 MB of body, holding the socket (and a thread)."""
    for url in (lesson.url, lesson.proxy_url):
        head = b"POST /contributors/pallets/flask HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n"
        answer, closed_after = exchange(url, head, then=b"hello")
        assert answer.startswith(b"HTTP/1.1 405 "), answer
        assert b"\r\nAllow: GET\r\n" in answer and b"not allowed" in answer
        assert closed_after < 2, f"{url} kept the connection open {closed_after:.1f} s after answering"


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "get", "POST", "DELETE"])
def test_only_get_runs_the_pipeline_anything_else_is_405_allow_get(lesson, method):
    """Before: HEAD (and OPTIONS's 200) went through Flask's GET route: a GitHub call and a whole trace."""
    before = github_calls(lesson)
    for url, path in ((lesson.url, "/contributors/pallets/flask"), (lesson.proxy_url, "/stats/pallets/flask")):
        answer, _ = exchange(url, f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405 ") and b"\r\nAllow: GET\r\n" in head, answer
        assert b"X-Trace-Id" not in head  # no trace was made of it
        assert body == (
            b"" if method == "HEAD" else b'{"error": "The method is not allowed for the requested URL: only GET is."}\n'
        )
    time.sleep(0.5)
    assert github_calls(lesson) == before


def test_a_raw_utf8_path_is_read_as_utf8_and_double_slashes_get_json(lesson):
    """Before: 'p\\u00c3\\u00a4llets' (latin-1 read of UTF-8), and werkzeug's 308 HTML page for `//`."""
    answer, _ = exchange(lesson.url, b"GET /contributors/p\xc3\xa4llets/flask HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"invalid owner 'p\\u00e4llets'" in answer, answer
    for path in ("//", "//contributors//pallets/flask"):
        response = requests.get(lesson.url + path, timeout=10, allow_redirects=False)
        assert response.status_code == 404 and "no such route" in response.json()["error"], (path, response.text)


@pytest.mark.parametrize("stage", ["step4_distributed", "step6_baggage", "step8_opentelemetry"])
def test_the_gateway_says_the_proxy_hung_up_not_that_it_could_not_connect(stage):
    """Before: `cannot connect to the github-proxy` for a proxy that took the request and died mid-way."""
    import threading

    with (
        socket.create_server(("127.0.0.1", 0)) as hanging_up,
        running_collector(CollectorConfig.on_free_ports()) as store,
    ):

        def take_and_close() -> None:
            while True:
                try:
                    connection, _ = hanging_up.accept()
                except OSError:
                    return
                connection.recv(65536)  # the request came in...
                connection.close()  # ...and the proxy died

        threading.Thread(target=take_and_close, daemon=True).start()
        proxy = f"http://127.0.0.1:{hanging_up.getsockname()[1]}"
        redis_url = session_redis_url()
        with stage_processes(
            stage, "http://127.0.0.1:9", store.ports, redis_url=redis_url, only={"gateway"}, PROXY_URL=proxy
        ) as app:
            response = requests.get(app.url + "/contributors/pallets/flask", timeout=20)
    assert response.status_code == 502
    assert response.json() == {"error": "the github-proxy closed the connection without answering"}


def test_lesson_6_ignores_a_jaeger_debug_id_longer_than_64_bytes():
    """Before: jaeger-client stored a client's `jaeger-debug-id` of any size as a tag (10 KB seen)."""
    from workshop.terminal.query_client import QueryClient

    with (
        serve_in_thread(create_app(FakeGitHubConfig(computing_calls=0, rate_limit=10_000))) as github,
        running_collector(CollectorConfig.on_free_ports()) as store,
    ):
        redis_url = session_redis_url()
        redis.Redis.from_url(redis_url).flushdb()
        with stage_processes("step6_baggage", github, store.ports, redis_url=redis_url) as app:
            ids = []
            for debug_id in ("d" * 10_000, "my-debug-session"):
                response = requests.get(
                    app.url + "/contributors/pallets/flask", headers={"jaeger-debug-id": debug_id}, timeout=20
                )
                assert response.status_code == 200
                ids.append(response.headers["X-Trace-Id"])
            query = QueryClient(store.url)
            traces = [query.wait_for_trace(trace_id, {"gateway", "github-proxy"}, timeout=10) for trace_id in ids]
    tagged = [
        [tag["value"] for span in trace["spans"] for tag in span["tags"] if tag["key"] == "jaeger-debug-id"]
        for trace in traces
    ]
    assert tagged == [[], ["my-debug-session"]]
