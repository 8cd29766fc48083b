"""The contributors app's HTTP behaviour, the same in every stage that serves it (tracing changes nothing)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from tests.conftest import TOKEN, FakeGitHub, github_gives_up_soon, serve_stage_app
from tests.support.spans import settled, view
from workshop.fake_github import contributors_for
from workshop.ports import free_port

STAGES = [
    "step1_monolith",
    "step2_spans",
    "step3_tags_logs",
    "step4_distributed",
    "step5_queue",
    "step6_baggage",
    "step7_opentelemetry_shim",
    "step8_opentelemetry",
]


@pytest.fixture(params=STAGES)
def app_url(request, fake_github: FakeGitHub, monkeypatch, spans):
    with serve_stage_app(request.param, monkeypatch, fake_github.url) as url:
        yield url


def get(url: str, path: str) -> requests.Response:
    return requests.get(url + path, timeout=10)


def expected(owner: str, repo: str) -> list[dict]:
    commits: Counter = Counter()
    for entry in contributors_for(owner, repo):
        if entry["author"]:
            commits[entry["author"]["login"]] += entry["total"]
    return [{"login": login, "commits": n} for login, n in sorted(commits.items(), key=lambda i: (-i[1], i[0]))]


def test_answers_contributors_most_commits_first(app_url, fake_github):
    response = get(app_url, "/contributors/pallets/flask")
    assert response.status_code == 200
    body = response.json()
    assert body == {"repo": "pallets/flask", "contributors": expected("pallets", "flask")}
    commits = [c["commits"] for c in body["contributors"]]
    assert commits == sorted(commits, reverse=True)
    assert fake_github.calls()["total"] == 3  # two 202s ("computing"), then the data


def test_drops_contributors_without_a_github_account(app_url):
    raw = contributors_for("pallets", "flask")
    assert any(entry["author"] is None for entry in raw)
    logins = [c["login"] for c in get(app_url, "/contributors/pallets/flask").json()["contributors"]]
    assert len(logins) == sum(1 for entry in raw if entry["author"])


def test_second_request_is_served_without_retries(app_url, fake_github):
    get(app_url, "/contributors/pallets/flask")
    assert get(app_url, "/contributors/pallets/flask").status_code == 200
    assert fake_github.calls()["total"] == 4


def test_still_computing_after_every_attempt_is_503_with_retry_after(app_url, fake_github):
    fake_github.config.computing_calls = 100
    response = get(app_url, "/contributors/pallets/flask")
    assert response.status_code == 503
    assert "still computing" in response.json()["error"]
    assert int(response.headers["Retry-After"]) > 0


def test_unknown_repository_is_404(app_url):
    response = get(app_url, "/contributors/octocat/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {"error": "repository octocat/does-not-exist not found on GitHub"}


def test_rate_limited_repo_is_429_with_retry_after(app_url):
    response = get(app_url, "/contributors/octocat/rate-limited")
    assert response.status_code == 429
    assert "rate limit" in response.json()["error"]
    assert int(response.headers["Retry-After"]) >= 1


def test_hourly_rate_limit_is_429(app_url, fake_github):
    fake_github.config.computing_calls = 0
    fake_github.config.rate_limit = 2
    assert get(app_url, "/contributors/a/one").status_code == 200
    assert get(app_url, "/contributors/a/two").status_code == 200
    response = get(app_url, "/contributors/a/three")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 3000  # GitHub's window is an hour


def test_github_server_error_is_502(app_url):
    response = get(app_url, "/contributors/octocat/server-error")
    assert response.status_code == 502
    assert response.json() == {"error": "GitHub answered 500"}


def test_github_timeout_is_504(app_url, request):
    started = time.monotonic()
    with github_gives_up_soon(request.node.callspec.params["app_url"]):
        response = get(app_url, "/contributors/octocat/slow")
    assert response.status_code == 504
    assert "did not answer within 0.5 s" in response.json()["error"]
    assert time.monotonic() - started < 2  # the app gave up at its timeout, not when GitHub answered


def test_github_unreachable_is_502(monkeypatch, spans):
    closed = f"http://127.0.0.1:{free_port()}"
    for stage in STAGES:
        with serve_stage_app(stage, monkeypatch, closed) as url:
            response = get(url, "/contributors/pallets/flask")
            assert response.status_code == 502, stage
            assert response.json() == {"error": f"cannot connect to GitHub at {closed}"}


def test_repository_without_commits_has_no_contributors(app_url):
    response = get(app_url, "/contributors/octocat/empty")
    assert response.status_code == 200
    assert response.json() == {"repo": "octocat/empty", "contributors": []}


def test_latency_of_github_is_waited_for(app_url, fake_github):
    fake_github.config.latency = 0.1
    fake_github.config.computing_calls = 0
    assert get(app_url, "/contributors/pallets/flask").status_code == 200


@pytest.mark.parametrize(
    "path, message",
    [
        ("/contributors/-octocat/flask", "invalid owner '-octocat'"),
        ("/contributors/octo--cat/flask", "invalid owner 'octo--cat'"),
        ("/contributors/octocat-/flask", "invalid owner 'octocat-'"),
        ("/contributors/" + "a" * 40 + "/flask", "invalid owner 'aaaa"),
        ("/contributors/octo_cat/flask", "invalid owner 'octo_cat'"),
        ("/contributors/octocat/%2E%2E", "invalid repository '..'"),
        ("/contributors/octocat/fl%20ask", "invalid repository 'fl ask'"),
        ("/contributors/octocat/" + "r" * 101, "invalid repository 'rrrr"),
        ("/contributors/octocat/fl%3Cscript%3E", "invalid repository 'fl<script>'"),
    ],
)
def test_invalid_names_are_400_with_a_message(app_url, fake_github, path, message):
    response = get(app_url, path)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    assert fake_github.calls()["total"] == 0  # never sent to GitHub


@pytest.mark.parametrize("name", ["a", "octo-cat", "A1", "x" * 39])
def test_valid_owner_names_are_accepted(app_url, fake_github, name):
    fake_github.config.computing_calls = 0
    assert get(app_url, f"/contributors/{name}/repo.name_-1").status_code == 200


def test_unknown_route_and_method_answer_json(app_url):
    response = get(app_url, "/nothing/here")
    assert response.status_code == 404
    assert "try /contributors/<owner>/<repo>" in response.json()["error"]
    response = requests.post(app_url + "/contributors/pallets/flask", timeout=5)
    assert response.status_code == 405
    assert "error" in response.json()


def test_token_is_sent_to_github_as_bearer(fake_github, monkeypatch, spans):
    fake_github.config.computing_calls = 0
    for stage in STAGES:
        with serve_stage_app(stage, monkeypatch, fake_github.url, token=TOKEN) as url:
            assert get(url, "/contributors/pallets/flask").status_code == 200
    assert fake_github.calls() == {"total": len(STAGES), "with_token": len(STAGES)}


def test_unexpected_exception_is_json_without_a_stack_trace(app_url, monkeypatch, request):
    from tests.support.stage_loader import ROOT, load_stage_module

    stage = request.node.callspec.params["app_url"]
    in_worker = (ROOT / stage / "worker.py").exists()  # from lesson 5 the worker cleans the data
    module = load_stage_module(stage, "worker" if in_worker else "app")

    def broken(stats):
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "clean_github_data", broken)
    response = get(app_url, "/contributors/pallets/flask")
    if in_worker:  # the worker answers with the error and keeps running
        assert response.status_code == 502
        assert response.json() == {"error": "the worker could not clean the data: RuntimeError: boom"}
    else:
        assert response.status_code == 500
        assert response.json() == {"error": "internal error: see the app's log"}


def test_concurrent_requests_each_get_their_own_trace(app_url, fake_github, spans, request):
    """flask-opentracing 2.0.0 alone mixes up concurrent requests' spans; the stages' FlaskTracing does not."""
    if request.node.callspec.params["app_url"] == "step1_monolith":
        return  # nothing traced yet
    fake_github.config.computing_calls = 0
    answers: dict[int, str | None] = {}

    def ask(n: int) -> None:
        answers[n] = requests.get(app_url + "/contributors/pallets/flask", timeout=20).headers.get("X-Trace-Id")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert None not in answers.values() and len(set(answers.values())) == 8
    roots = {span.trace_id for span in map(view, settled(spans)) if not span.parent_id}
    assert roots == {int(trace_id, 16) for trace_id in answers.values()}
