"""The GitHub contributors app: who committed how much to a repository, most commits first.

    GET /contributors/<owner>/<repo>

It asks GitHub's `stats/contributors` API (by default the workshop's offline fake GitHub).
"""

import logging
import os
import re
import time
from collections import Counter

import requests
from flask import Flask, jsonify
from serving import serve
from werkzeug.exceptions import HTTPException

GITHUB_API_URL = os.environ.get("GITHUB_API_URL", "http://127.0.0.1:8482")  # the fake GitHub
GITHUB_TOKEN = os.environ.get("GITHUB_TOKEN", "")  # optional: GitHub allows 60 calls an hour without one
GITHUB_TIMEOUT = float(os.environ.get("GITHUB_TIMEOUT", "5"))  # seconds for each call to GitHub
MAX_ATTEMPTS = 5  # GitHub answers 202 while it computes the stats: ask again, up to this many times
RETRY_DELAY = 1.0  # seconds to wait after a 202

# GitHub's naming rules: owners are 1-39 letters, digits or single hyphens, not at either end;
# repositories are 1-100 letters, digits, '.', '-' or '_' (but not '.' or '..').
OWNER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
REPO_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("contributors")
app = Flask(__name__)


class GitHubError(Exception):
    """GitHub could not give us the stats: `status` and `message` are what our client gets."""

    def __init__(self, status, message, retry_after=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@app.get("/contributors/<owner>/<repo>")
def contributors(owner, repo):
    if not OWNER_NAME.fullmatch(owner):
        return error_response(400, f"invalid owner {owner!r}: use 1-39 letters, digits or single hyphens")
    if not REPO_NAME.fullmatch(repo) or repo in (".", ".."):
        return error_response(400, f"invalid repository {repo!r}: use 1-100 letters, digits, '.', '-' or '_'")
    try:
        stats = get_repo_contributors(owner, repo)
    except GitHubError as error:
        log.warning("GitHub error for %s/%s: %s", owner, repo, error.message)
        return error_response(error.status, error.message, error.retry_after)
    return jsonify(repo=f"{owner}/{repo}", contributors=clean_github_data(stats))


def get_repo_contributors(owner, repo):
    """GitHub's raw stats for owner/repo: a list with one entry per contributor."""
    url = f"{GITHUB_API_URL}/repos/{owner}/{repo}/stats/contributors"
    headers = {"Accept": "application/vnd.github+json"}
    if GITHUB_TOKEN:
        headers["Authorization"] = f"Bearer {GITHUB_TOKEN}"
    for attempt in range(1, MAX_ATTEMPTS + 1):
        response = call_github(url, headers)
        if response.status_code == 202:  # "stats are being computed": wait, then ask again
            time.sleep(RETRY_DELAY)
            continue
        return read_stats(response, owner, repo)
    raise GitHubError(503, f"GitHub is still computing the stats of {owner}/{repo}: try again soon", 5)


def call_github(url, headers):
    try:
        return requests.get(url, headers=headers, timeout=GITHUB_TIMEOUT)
    except requests.Timeout:
        raise GitHubError(504, f"GitHub did not answer within {GITHUB_TIMEOUT:g} s") from None
    except requests.ConnectionError:
        raise GitHubError(502, f"cannot connect to GitHub at {GITHUB_API_URL}") from None


def read_stats(response, owner, repo):
    if response.status_code == 200:
        try:
            return response.json()
        except ValueError:
            raise GitHubError(502, "GitHub answered with a body that is not JSON") from None
    if response.status_code == 204:  # a repository without commits
        return []
    if response.status_code == 404:
        raise GitHubError(404, f"repository {owner}/{repo} not found on GitHub")
    if response.status_code in (403, 429) and response.headers.get("X-RateLimit-Remaining") == "0":
        reset = int(response.headers.get("X-RateLimit-Reset", "0"))
        wait = max(reset - int(time.time()), 1)
        raise GitHubError(429, f"GitHub's rate limit is used up: try again in {wait} s", wait)
    if response.status_code in (401, 403):
        raise GitHubError(502, f"GitHub refused the request ({response.status_code}): check GITHUB_TOKEN")
    raise GitHubError(502, f"GitHub answered {response.status_code}")


def clean_github_data(stats):
    """Commits per login, most first; entries with no GitHub account (author null) are dropped."""
    commits = Counter()
    for entry in stats:
        if entry.get("author"):
            commits[entry["author"]["login"]] += entry["total"]
    ranked = sorted(commits.items(), key=lambda item: (-item[1], item[0]))
    return [{"login": login, "commits": count} for login, count in ranked]


def error_response(status, message, retry_after=None):
    response = jsonify(error=message)
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


@app.errorhandler(404)
def no_such_route(error):
    return error_response(404, "no such route: try /contributors/<owner>/<repo>")


@app.errorhandler(Exception)
def unexpected_error(error):
    if isinstance(error, HTTPException):  # Flask's own answers (405, ...): as JSON too
        return error_response(error.code, error.description)
    log.exception("unexpected error")
    return error_response(500, "internal error: see the app's log")


if __name__ == "__main__":
    serve(app, os.environ.get("APP_HOST", "127.0.0.1"), int(os.environ.get("APP_PORT", "8480")))
