"""The github-proxy service: the gateway's one way to GitHub (lesson 4 moved this code out of app.py).

    GET /stats/<owner>/<repo>   ->   GitHub's `stats/contributors` answer for owner/repo, or {"error": ...}

It asks GitHub's `stats/contributors` API (by default the workshop's offline fake GitHub), retries
GitHub's 202 and turns GitHub's failures into a status and a message for the gateway to pass on.
flask-opentracing reads the trace context from the request's headers, so these spans join the
gateway's trace; a request without (or with a garbled) `uber-trace-id` starts a new trace.
"""

import logging
import os
import re
import time

import requests
from flask import Flask, jsonify
from opentracing import global_tracer
from opentracing.ext import tags
from serving import serve
from tracing import FlaskTracing, close_tracer, correlate_logs, init_tracer
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

logging.basicConfig(
    level=logging.INFO,
    format="[trace=%(trace_id)s span=%(span_id)s] %(levelname)s %(name)s: %(message)s",  # `make` adds the time
)
correlate_logs()
log = logging.getLogger("github-proxy")
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


@app.get("/stats/<owner>/<repo>")
def stats(owner, repo):
    if not OWNER_NAME.fullmatch(owner):
        return error_response(400, f"invalid owner {owner!r}: use 1-39 letters, digits or single hyphens")
    if not REPO_NAME.fullmatch(repo) or repo in (".", ".."):
        return error_response(400, f"invalid repository {repo!r}: use 1-100 letters, digits, '.', '-' or '_'")
    tracing.get_span().set_tag("github.repo", f"{owner}/{repo}")
    try:
        return jsonify(get_repo_contributors(owner, repo))
    except GitHubError as error:
        log.warning("GitHub error for %s/%s: %s", owner, repo, error.message)
        return error_response(error.status, error.message, error.retry_after)


def get_repo_contributors(owner, repo):
    """GitHub's raw stats for owner/repo: a list with one entry per contributor."""
    with global_tracer().start_active_span("get_repo_contributors") as scope:
        url = f"{GITHUB_API_URL}/repos/{owner}/{repo}/stats/contributors"
        headers = {"Accept": "application/vnd.github+json"}
        if GITHUB_TOKEN:
            headers["Authorization"] = f"Bearer {GITHUB_TOKEN}"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            response = call_github(url, headers, attempt)
            if response.status_code == 202:  # "stats are being computed": wait, then ask again
                log.info("GitHub is computing the stats of %s/%s: retrying in %g s", owner, repo, RETRY_DELAY)
                scope.span.log_kv({"event": "retry", "message": "GitHub answered 202", "wait_s": RETRY_DELAY})
                time.sleep(RETRY_DELAY)
                continue
            return read_stats(response, owner, repo)
        raise GitHubError(503, f"GitHub is still computing the stats of {owner}/{repo}: try again soon", 5)


def call_github(url, headers, attempt):
    with global_tracer().start_active_span("github_request") as scope:  # one span per attempt
        span = scope.span
        span.set_tag(tags.SPAN_KIND, tags.SPAN_KIND_RPC_CLIENT)  # tag names: OpenTracing's conventions
        span.set_tag(tags.COMPONENT, "requests")
        span.set_tag(tags.PEER_SERVICE, "github")
        span.set_tag(tags.HTTP_METHOD, "GET")
        span.set_tag(tags.HTTP_URL, url)  # never the headers: they hold the token
        span.set_tag("github.attempt", attempt)
        try:
            response = requests.get(url, headers=headers, timeout=GITHUB_TIMEOUT)
        except requests.Timeout:
            raise GitHubError(504, f"GitHub did not answer within {GITHUB_TIMEOUT:g} s") from None
        except requests.ConnectionError:
            raise GitHubError(502, f"cannot connect to GitHub at {GITHUB_API_URL}") from None
        span.set_tag(tags.HTTP_STATUS_CODE, response.status_code)
        if "X-RateLimit-Remaining" in response.headers:
            span.log_kv(
                {
                    "event": "rate_limit",
                    "remaining": response.headers["X-RateLimit-Remaining"],
                    "limit": response.headers.get("X-RateLimit-Limit", "?"),
                }
            )
        if response.status_code >= 400:
            span.set_tag(tags.ERROR, True)
            span.log_kv({"event": "error", "message": f"GitHub answered {response.status_code}"})
        return response


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


@app.after_request
def tag_server_error(response):
    """A 5xx answer is an error of this request's span (a 4xx is the caller's mistake)."""
    span = tracing.get_span()
    if span is not None and response.status_code >= 500:
        span.set_tag(tags.ERROR, True)
    return response


@app.errorhandler(404)
def no_such_route(error):
    return error_response(404, "no such route: try /stats/<owner>/<repo>")


@app.errorhandler(Exception)
def unexpected_error(error):
    if isinstance(error, HTTPException):  # Flask's own answers (405, ...): as JSON too
        return error_response(error.code, error.description)
    log.exception("unexpected error")
    span = tracing.get_span()
    if span is not None:  # flask-opentracing does not mark a handled exception: we do
        span.set_tag(tags.ERROR, True)
        span.log_kv({"event": "error", "message": str(error), "error.kind": type(error).__name__})
    return error_response(500, "internal error: see the app's log")


if __name__ == "__main__":
    tracer = init_tracer("github-proxy")
    try:  # until Ctrl-C or SIGTERM, then the requests in flight are finished...
        serve(app, os.environ.get("APP_HOST", "127.0.0.1"), int(os.environ.get("PROXY_PORT", "8481")))
    finally:
        close_tracer(tracer)  # ...and either way the last spans are sent before the process exits
