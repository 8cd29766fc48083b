"""An offline GitHub: `GET /repos/{owner}/{repo}/stats/contributors` in GitHub's exact JSON shape.

Every owner/repo has deterministic contributors (the same answer every run, on every laptop), and
GitHub's real behaviours can each be reached on purpose:

| request                              | answer                                                        |
|--------------------------------------|---------------------------------------------------------------|
| any owner/repo, first calls          | `202 Accepted`, empty body: "stats are being computed"        |
| any owner/repo, after that           | `200` with contributors; one entry has `"author": null`       |
| repo `does-not-exist`                | `404` `{"message": "Not Found", ...}`                         |
| repo `rate-limited`                  | `403` with `X-RateLimit-Remaining: 0` (GitHub's rate limit)   |
| repo `server-error`                  | `500` `{"message": "Server Error"}`                           |
| repo `slow`                          | answers after `slow_seconds` (longer than the app's timeout)  |
| repo `empty`                         | `204 No Content` (a repository without commits)               |
| more than `rate_limit` calls an hour | `403` rate limited, like GitHub (60 an hour, 5000 with token) |

Every answer carries GitHub's `X-RateLimit-*` headers. `latency` delays every answer.
A token sent as `Authorization: Bearer ...` raises the limit and is never logged or echoed.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, Response, jsonify, request

log = logging.getLogger("fake-github")

DOCS_URL = "https://docs.github.com/rest/metrics/statistics#get-all-contributor-commit-activity"
RATE_LIMIT_DOCS_URL = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
WEEK = 7 * 24 * 3600
FIRST_WEEK = 1704585600  # Sunday 2024-01-07 00:00 UTC: weeks start on Sundays, as on GitHub
WEEKS = 12
LOGINS = (
    "octocat",
    "monalisa",
    "hubot",
    "defunkt",
    "mojombo",
    "pjhyett",
    "wycats",
    "technoweenie",
    "ada-lovelace",
    "grace-hopper",
    "linus-t",
    "guido",
    "mitsuhiko",
    "kennethreitz",
    "yurishkuro",
)
SPECIAL_REPOS = ("does-not-exist", "rate-limited", "server-error", "slow", "empty")


@dataclass
class FakeGitHubConfig:
    computing_calls: int = 2  # how many calls per repo answer 202 before the data is "computed"
    latency: float = 0.0  # seconds added to every answer
    slow_seconds: float = 10.0  # how long repo `slow` takes
    rate_limit: int | None = None  # calls an hour; None: GitHub's 60, or 5000 with a token
    rate_window: float = 3600.0


@dataclass
class _State:
    calls_per_repo: dict[str, int] = field(default_factory=dict)
    calls_in_window: int = 0
    calls_total: int = 0
    calls_with_token: int = 0
    window_start: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)


def contributors_for(owner: str, repo: str) -> list[dict]:
    """The deterministic `stats/contributors` body for owner/repo (GitHub lists the top committer last)."""
    full_name = f"{owner}/{repo}".lower()
    rng = random.Random(hashlib.sha256(full_name.encode()).digest())
    logins = rng.sample(LOGINS, rng.randint(3, 7))
    entries = []
    for login in logins:
        weeks = [_week(rng, FIRST_WEEK + i * WEEK, busy=rng.random() < 0.7) for i in range(WEEKS)]
        entries.append({"author": _author(login), "total": sum(w["c"] for w in weeks), "weeks": weeks})
    # Commits whose e-mail matches no GitHub account: GitHub lists them with a null author.
    weeks = [_week(rng, FIRST_WEEK + i * WEEK, busy=i % 4 == 0) for i in range(WEEKS)]
    entries.append({"author": None, "total": sum(w["c"] for w in weeks), "weeks": weeks})
    return sorted(entries, key=lambda entry: entry["total"])


def _week(rng: random.Random, start: int, busy: bool) -> dict:
    commits = rng.randint(1, 25) if busy else 0
    return {
        "w": start,
        "a": commits * rng.randint(5, 60),
        "d": commits * rng.randint(1, 30),
        "c": commits,
    }


def _author(login: str) -> dict:
    user_id = int(hashlib.sha256(login.encode()).hexdigest()[:7], 16)
    api = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"MDQ6VXNlcj{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "User",
        "user_view_type": "public",
        "site_admin": False,
    }


def create_app(config: FakeGitHubConfig | None = None) -> Flask:
    config = config or FakeGitHubConfig()
    state = _State()
    app = Flask("fake_github")

    def rate_limit_for_request() -> int:
        if config.rate_limit is not None:
            return config.rate_limit
        return 5000 if request.headers.get("Authorization") else 60

    def count_call() -> tuple[dict[str, str], bool]:
        """Count this call against the hourly limit: GitHub's X-RateLimit-* headers, and whether it is over."""
        limit = rate_limit_for_request()
        with state.lock:
            now = time.time()
            if now - state.window_start >= config.rate_window:
                state.window_start, state.calls_in_window = now, 0
            state.calls_in_window += 1
            state.calls_total += 1
            state.calls_with_token += bool(request.headers.get("Authorization"))
            used = state.calls_in_window
            reset = int(state.window_start + config.rate_window)
            first_over = used == limit + 1
        if first_over:  # said once an hour, in the lesson's terminal: realistic, but never a mystery
            log.warning(
                "%d calls this hour: GitHub's rate limit is used up, as the real one would be. This is the "
                "workshop's fake GitHub: restart the lesson to reset it, or raise it with "
                "FAKE_GITHUB_RATE_LIMIT=1000 make stepN",
                limit,
            )
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(limit - used, 0)),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": str(min(used, limit)),
            "X-RateLimit-Resource": "core",
        }
        return headers, used > limit

    def rate_limited(headers: dict[str, str]) -> Response:
        headers = {**headers, "X-RateLimit-Remaining": "0"}
        body = {
            "message": f"API rate limit exceeded for {request.remote_addr}. (But here's the good news: "
            "Authenticated requests get a higher rate limit. Check out the documentation for more details.) "
            "[The workshop's fake GitHub: restart the lesson to reset this limit, or set FAKE_GITHUB_RATE_LIMIT.]",
            "documentation_url": RATE_LIMIT_DOCS_URL,
        }
        return _json(body, 403, headers)

    @app.get("/")
    def index() -> Response:
        return jsonify(
            {
                "fake_github": True,
                "contributors_url": "/repos/{owner}/{repo}/stats/contributors",
                "special_repos": list(SPECIAL_REPOS),
                "computing_calls": config.computing_calls,
                "calls": {"total": state.calls_total, "with_token": state.calls_with_token},
            }
        )

    @app.get("/repos/<owner>/<repo>/stats/contributors")
    def stats_contributors(owner: str, repo: str) -> Response:
        if config.latency:
            time.sleep(config.latency)
        headers, over_limit = count_call()
        if over_limit:
            return rate_limited(headers)
        name = repo.lower()
        if name == "does-not-exist":
            return _json({"message": "Not Found", "documentation_url": DOCS_URL, "status": "404"}, 404, headers)
        if name == "rate-limited":
            return rate_limited(headers)
        if name == "server-error":
            return _json({"message": "Server Error"}, 500, headers)
        if name == "slow":
            time.sleep(config.slow_seconds)
        if name == "empty":
            return Response(status=204, headers=headers)
        key = f"{owner}/{repo}".lower()
        with state.lock:
            calls = state.calls_per_repo[key] = state.calls_per_repo.get(key, 0) + 1
        if calls <= config.computing_calls:
            return Response(status=202, headers=headers)  # GitHub: "try again in a moment"
        return _json(contributors_for(owner, repo), 200, headers)

    @app.errorhandler(404)
    def not_found(error: Exception) -> Response:
        return _json({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, 404, {})

    @app.errorhandler(405)
    def not_allowed(error: Exception) -> Response:
        return _json({"message": "Method Not Allowed"}, 405, {})

    return app


def _json(body: object, status: int, headers: dict[str, str]) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response
