"""The github-proxy service: the gateway's one way to GitHub (lesson 4 moved this code out of app.py).

    GET /stats/<owner>/<repo>   ->   GitHub's `stats/contributors` answer for owner/repo, or {"error": ...}

It asks GitHub's `stats/contributors` API (by default the workshop's offline fake GitHub), retries
GitHub's 202 and turns GitHub's failures into a status and a message for the gateway to pass on.
OpenTelemetry's Flask instrumentation reads the trace context from the request's headers, so these
spans join the gateway's trace; a request without (or with a garbled) `traceparent` starts a new trace.
"""

import logging
import os
import re
import time

import requests
from flask import Flask, jsonify
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.trace import StatusCode
from serving import serve
from tracing import (
    close_tracer,
    get_baggage,
    init_tracer,
    instrument_libraries,
    instrument_logs,
    recorded_trace_id,
    to_a_third_party,
)
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

instrument_logs()
log = logging.getLogger("github-proxy")
tracer = trace.get_tracer("github-proxy")
app = Flask(__name__)
# One SERVER span per request, named after its route, with the HTTP attributes of the semantic conventions.
FlaskInstrumentor().instrument_app(app)


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
    span = trace.get_current_span()
    span.set_attribute("github.repo", f"{owner}/{repo}")
    # Baggage from the gateway, carried in the `baggage` header: recorded here, where it helps.
    span.set_attribute("baggage.client", get_baggage(span, "client") or "-")
    try:
        return jsonify(get_repo_contributors(owner, repo))
    except GitHubError as error:
        log.warning("GitHub error for %s/%s: %s", owner, repo, error.message)
        return error_response(error.status, error.message, error.retry_after)


def get_repo_contributors(owner, repo):
    """GitHub's raw stats for owner/repo: a list with one entry per contributor."""
    with tracer.start_as_current_span("get_repo_contributors") as span:
        url = f"{GITHUB_API_URL}/repos/{owner}/{repo}/stats/contributors"
        headers = {"Accept": "application/vnd.github+json"}
        if GITHUB_TOKEN:
            headers["Authorization"] = f"Bearer {GITHUB_TOKEN}"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            response = call_github(url, headers, attempt)
            if response.status_code == 202:  # "stats are being computed": wait, then ask again
                log.info("GitHub is computing the stats of %s/%s: retrying in %g s", owner, repo, RETRY_DELAY)
                span.add_event("retry", {"message": "GitHub answered 202", "wait_s": RETRY_DELAY})
                time.sleep(RETRY_DELAY)
                continue
            return read_stats(response, owner, repo)
        raise GitHubError(503, f"GitHub is still computing the stats of {owner}/{repo}: try again soon", 5)


def call_github(url, headers, attempt):
    """One attempt. The requests instrumentation makes its CLIENT span (the URL, never the headers: they
    hold the token); what GitHub said about it is an event on get_repo_contributors's span. GitHub is a
    third party: it gets no trace context and no baggage (the instrumentation would send both)."""
    try:
        with to_a_third_party():
            response = requests.get(url, headers=headers, timeout=GITHUB_TIMEOUT)
    except requests.Timeout:
        raise GitHubError(504, f"GitHub did not answer within {GITHUB_TIMEOUT:g} s") from None
    except requests.ConnectionError:
        raise GitHubError(502, f"cannot connect to GitHub at {GITHUB_API_URL}") from None
    answer = {"github.attempt": attempt, "http.response.status_code": response.status_code}
    if "X-RateLimit-Remaining" in response.headers:
        answer["github.rate_limit.remaining"] = response.headers["X-RateLimit-Remaining"]  # as GitHub wrote it
    trace.get_current_span().add_event("github.response", answer)
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
    (A caller can ask not to record it: `traceparent: 00-...-00`. Then there is no trace to name.)"""
    trace_id = recorded_trace_id(trace.get_current_span())
    if trace_id:
        response.headers["X-Trace-Id"] = trace_id
    return response


@app.errorhandler(404)
def no_such_route(error):
    return error_response(404, "no such route: try /stats/<owner>/<repo>")


@app.errorhandler(Exception)
def unexpected_error(error):
    if isinstance(error, HTTPException):  # Flask's own answers (405, ...): as JSON too
        return error_response(error.code, error.description)
    log.exception("unexpected error")
    span = trace.get_current_span()  # an exception handled here is not seen by the instrumentation
    span.record_exception(error)
    span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
    return error_response(500, "internal error: see the app's log")


if __name__ == "__main__":
    provider = init_tracer("github-proxy")
    instrument_libraries()
    try:  # until Ctrl-C or SIGTERM, then the requests in flight are finished...
        serve(app, os.environ.get("APP_HOST", "127.0.0.1"), int(os.environ.get("PROXY_PORT", "8481")))
    finally:
        close_tracer(provider)  # ...and either way the last spans are sent before the process exits
