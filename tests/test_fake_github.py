"""The offline GitHub: GitHub's JSON shape, deterministic data, and each of GitHub's behaviours on purpose."""

from __future__ import annotations

import time

import pytest

from workshop.fake_github import FakeGitHubConfig, contributors_for, create_app

AUTHOR_KEYS = {
    "login",
    "id",
    "node_id",
    "avatar_url",
    "gravatar_id",
    "url",
    "html_url",
    "followers_url",
    "following_url",
    "gists_url",
    "starred_url",
    "subscriptions_url",
    "organizations_url",
    "repos_url",
    "events_url",
    "received_events_url",
    "type",
    "user_view_type",
    "site_admin",
}


@pytest.fixture
def config() -> FakeGitHubConfig:
    return FakeGitHubConfig(computing_calls=0, slow_seconds=0.2)


@pytest.fixture
def client(config):
    return create_app(config).test_client()


def stats(client, repo: str = "pallets/flask", **headers):
    return client.get(f"/repos/{repo}/stats/contributors", headers=headers)


def test_shape_is_githubs(client):
    response = stats(client)
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, list) and len(body) >= 4
    for entry in body:
        assert set(entry) == {"author", "total", "weeks"}
        assert entry["total"] == sum(week["c"] for week in entry["weeks"])
        for week in entry["weeks"]:
            assert set(week) == {"w", "a", "d", "c"}
            assert week["w"] % (7 * 24 * 3600) == 1704585600 % (7 * 24 * 3600)  # weeks start on Sundays
        if entry["author"] is not None:
            assert set(entry["author"]) == AUTHOR_KEYS
    assert [entry["total"] for entry in body] == sorted(entry["total"] for entry in body)


def test_one_entry_has_a_null_author(client):
    assert sum(1 for entry in stats(client).get_json() if entry["author"] is None) == 1


def test_data_is_deterministic_and_differs_per_repo(client):
    assert stats(client).get_json() == contributors_for("pallets", "flask") == contributors_for("Pallets", "Flask")
    assert contributors_for("pallets", "flask") != contributors_for("pallets", "click")


def test_first_calls_answer_202_with_an_empty_body(config):
    config.computing_calls = 2
    client = create_app(config).test_client()
    assert [stats(client).status_code for _ in range(3)] == [202, 202, 200]
    assert stats(client, "other/repo").status_code == 202  # counted per repository
    assert stats(client, "other/repo").data == b""


def test_does_not_exist_is_404(client):
    response = stats(client, "octocat/does-not-exist")
    assert response.status_code == 404
    assert response.get_json()["message"] == "Not Found"


def test_rate_limited_repo_is_403_with_headers(client):
    response = stats(client, "octocat/rate-limited")
    assert response.status_code == 403
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) > time.time()
    assert "rate limit exceeded" in response.get_json()["message"]


def test_hourly_limit_is_githubs_60_or_5000_with_a_token(client, config):
    response = stats(client)
    assert response.headers["X-RateLimit-Limit"] == "60"
    assert response.headers["X-RateLimit-Remaining"] == "59"
    assert response.headers["X-RateLimit-Used"] == "1"
    assert stats(client, Authorization="Bearer t").headers["X-RateLimit-Limit"] == "5000"


def test_calls_over_the_limit_are_403(config):
    config.rate_limit = 2
    client = create_app(config).test_client()
    assert [stats(client).status_code for _ in range(3)] == [200, 200, 403]


def test_rate_window_resets(config):
    config.rate_limit, config.rate_window = 1, 1.0  # a window a busy machine does not outlast between two calls
    client = create_app(config).test_client()
    assert stats(client).status_code == 200
    assert stats(client).status_code == 403
    time.sleep(1.05)
    assert stats(client).status_code == 200


def test_server_error_is_500(client):
    assert stats(client, "octocat/server-error").status_code == 500


def test_slow_waits(client):
    started = time.monotonic()
    assert stats(client, "octocat/slow").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_empty_is_204(client):
    response = stats(client, "octocat/empty")
    assert response.status_code == 204 and response.data == b""


def test_latency(config):
    config.latency = 0.1
    started = time.monotonic()
    stats(create_app(config).test_client())
    assert time.monotonic() - started >= 0.1


def test_unknown_route_is_json_404(client):
    response = client.get("/repos/a/b/commits")
    assert response.status_code == 404 and response.get_json()["message"] == "Not Found"
    assert client.post("/repos/a/b/stats/contributors").status_code == 405


def test_index_reports_calls_not_tokens(client):
    stats(client, Authorization="Bearer ghp_secret")
    stats(client)
    body = client.get("/").get_json()
    assert body["calls"] == {"total": 2, "with_token": 1}
    assert "ghp_secret" not in client.get("/").get_data(as_text=True)


def test_the_rate_limit_says_once_how_to_reset_or_lift_it(caplog):
    from workshop.fake_github import FakeGitHubConfig, create_app

    client = create_app(FakeGitHubConfig(computing_calls=0, rate_limit=2)).test_client()
    answers = [client.get("/repos/pallets/flask/stats/contributors") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 403, 403]
    assert "restart the lesson to reset this limit, or set FAKE_GITHUB_RATE_LIMIT" in answers[2].json["message"]
    said = [r.getMessage() for r in caplog.records if r.name == "fake-github"]
    assert len(said) == 1 and "restart the lesson to reset it" in said[0]
    assert "FAKE_GITHUB_RATE_LIMIT=1000 make stepN" in said[0]


def test_an_environment_variable_sets_the_limit(monkeypatch):
    from workshop.cli import build_parser
    from workshop.errors import WorkshopError

    monkeypatch.setenv("FAKE_GITHUB_RATE_LIMIT", "1000")
    assert build_parser().parse_args(["fake-github"]).rate_limit == 1000
    monkeypatch.setenv("FAKE_GITHUB_RATE_LIMIT", "lots")
    with pytest.raises(WorkshopError, match="FAKE_GITHUB_RATE_LIMIT must be a whole number"):
        build_parser().parse_args(["fake-github"])  # (when the command runs: its --help still works)
