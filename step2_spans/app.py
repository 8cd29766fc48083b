"""The GitHub contributors app: who committed how much to a repository, most commits first.

    GET /contributors/<owner>/<repo>

It asks GitHub's `stats/contributors` API (by default the workshop's offline fake GitHub).
Lesson 2: every request is a trace, and each step of the work is a span in it.
"""

import logging
import os
import re
import time
from collections import Counter

import requests
from flask import Flask, jsonify
from opentracing import global_tracer
from serving import serve
from tracing import close_tracer, init_tracer
from tracing_fixes import FlaskTracing
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


def name_unrouted_request(span, request):
    if request.url_rule is None:  # no route matched: flask-opentracing would leave the name empty
        span.set_operation_name(f"{request.method} (no route)")


# One span per request. `global_tracer` is passed uncalled: FlaskTracing asks for the tracer
# at the first request, once the __main__ block below has created it.
tracing = FlaskTracing(global_tracer, trace_all_requests=True, app=app, start_span_cb=name_unrouted_request)


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
    with global_tracer().start_active_span("get_repo_contributors"):
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
    with global_tracer().start_active_span("github_request"):  # one span per attempt
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
    with global_tracer().start_active_span("clean_github_data"):
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


@app.after_request
def add_trace_id(response):
    """Every recorded answer names its trace: look it up with `python -m workshop trace <id>` or in Jaeger.
    (A caller can ask not to record it: `uber-trace-id: ...:0`. Then there is no trace to name.)"""
    span = tracing.get_span()
    if span is not None and span.is_sampled():
        response.headers["X-Trace-Id"] = f"{span.context.trace_id:016x}"
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
    tracer = init_tracer("contributors")
    try:  # until Ctrl-C or SIGTERM, then the requests in flight are finished...
        serve(app, os.environ.get("APP_HOST", "127.0.0.1"), int(os.environ.get("APP_PORT", "8480")))
    finally:
        close_tracer(tracer)  # ...and either way the last spans are sent before the process exits
