"""The GitHub contributors app: who committed how much to a repository, most commits first.

    GET /contributors/<owner>/<repo>

It asks GitHub's `stats/contributors` API (by default the workshop's offline fake GitHub).
Lesson 2: every request is a trace, and each step of the work is a span in it.
Lesson 3: spans carry tags (facts to search by) and logs (timestamped events), and errors are marked.
Lesson 4: this app is now the gateway; the calls to GitHub moved into the github-proxy service
(github_proxy.py). The trace context travels in HTTP headers, so both services' spans form one trace.
Lesson 5: cleaning the data moved into a worker (worker.py) that takes jobs from a Redis list. The trace
context travels inside each job, so the worker's spans join the trace too.
Lesson 6: baggage. Who asked (the X-Client header) and how many contributors they want (?top=N) are set
once, here at the edge, and every service downstream can read them: they travel with the trace context.
Lesson 7: the same OpenTracing calls, on OpenTelemetry (tracing.py): spans go out as OTLP, and the trace
context and baggage travel as W3C headers (`traceparent`, `baggage`).
"""

import json
import logging
import os
import re
import threading
import uuid

import redis
import requests
import urllib3
from flask import Flask, jsonify, request
from opentelemetry import propagate
from opentracing import global_tracer
from opentracing.ext import tags
from serving import serve
from tracing import FlaskTracing, close_tracer, correlate_logs, init_tracer, recorded_trace_id, set_baggage
from werkzeug.exceptions import HTTPException

PROXY_URL = os.environ.get("PROXY_URL", "http://127.0.0.1:8481")  # the github-proxy service
# Seconds to wait for the proxy: its usual worst case is 4 s of 202 retries and one 5 s GitHub timeout.
# (Five slow 202s in a row could take it 29 s; a caller should not wait that long, so we do not.)
PROXY_TIMEOUT = float(os.environ.get("PROXY_TIMEOUT", "12"))
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6380/0")
JOB_QUEUE = "contributors:jobs"  # a Redis list: the gateway pushes jobs, workers pop them
WORKER_TIMEOUT = float(os.environ.get("WORKER_TIMEOUT", "10"))  # seconds to wait for a worker's answer

# GitHub's naming rules: owners are 1-39 letters, digits or single hyphens, not at either end;
# repositories are 1-100 letters, digits, '.', '-' or '_' (but not '.' or '..').
OWNER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")
REPO_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")

logging.basicConfig(
    level=logging.INFO,
    format="[trace=%(trace_id)s span=%(span_id)s] %(levelname)s %(name)s: %(message)s",  # `make` adds the time
)
correlate_logs()
log = logging.getLogger("gateway")
app = Flask(__name__)
# A blocking wait on Redis must not outlast the socket: the socket timeout is longer than any wait.
# Each request waiting for a worker holds a Redis connection: up to MAX_WAITING wait at once, and the
# others queue for a turn (within their WORKER_TIMEOUT) instead of failing for want of a connection.
MAX_WAITING = 100
waiting_turns = threading.BoundedSemaphore(MAX_WAITING)
redis_client = redis.Redis.from_url(
    REDIS_URL, max_connections=MAX_WAITING, socket_connect_timeout=2, socket_timeout=WORKER_TIMEOUT + 5
)


@app.before_request  # registered before FlaskTracing below, so it runs before the trace context is read
def admit_no_baggage_from_outside():
    """This gateway is the edge: it decides which baggage enters, and a client's own `baggage` header is
    not admitted. The lesson's two items are set below, checked."""
    request.environ.pop("HTTP_BAGGAGE", None)


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


class WorkerError(Exception):
    """The worker could not clean the stats: `status` and `message` are what our client gets."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


@app.get("/contributors/<owner>/<repo>")
def contributors(owner, repo):
    if not OWNER_NAME.fullmatch(owner):
        return error_response(400, f"invalid owner {owner!r}: use 1-39 letters, digits or single hyphens")
    if not REPO_NAME.fullmatch(repo) or repo in (".", ".."):
        return error_response(400, f"invalid repository {repo!r}: use 1-100 letters, digits, '.', '-' or '_'")
    top = request.args.get("top", "")
    if top and not (re.fullmatch(r"[0-9]{1,3}", top) and 1 <= int(top) <= 100):
        return error_response(400, f"invalid top {top[:20]!r}: ask for 1 to 100 contributors")
    span = tracing.get_span()
    span.set_tag("github.repo", f"{owner}/{repo}")
    # Baggage: set once at the edge, readable in every service after this point. Never a secret.
    set_baggage(span, "client", client_name())
    if top:
        set_baggage(span, "contributors.top", top)
    try:
        stats = call_github_proxy(owner, repo)
        contributors = clean_in_worker(stats)
    except GitHubError as error:
        log.warning("no stats for %s/%s: %s", owner, repo, error.message)  # the message names what failed
        return error_response(error.status, error.message, error.retry_after)
    except WorkerError as error:
        log.warning("not cleaned for %s/%s: %s", owner, repo, error.message)
        return error_response(error.status, error.message)
    return jsonify(repo=f"{owner}/{repo}", contributors=contributors)


def client_name():
    """The X-Client header, read as UTF-8 (HTTP hands it over as latin-1), or "anonymous"."""
    raw = request.headers.get("X-Client", "anonymous")
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def call_github_proxy(owner, repo):
    """GitHub's raw stats for owner/repo, from the github-proxy service."""
    url = f"{PROXY_URL}/stats/{owner}/{repo}"
    with global_tracer().start_active_span("call_github_proxy") as scope:
        span = scope.span
        span.set_tag(tags.SPAN_KIND, tags.SPAN_KIND_RPC_CLIENT)
        span.set_tag(tags.COMPONENT, "requests")
        span.set_tag(tags.PEER_SERVICE, "github-proxy")
        span.set_tag(tags.HTTP_METHOD, "GET")
        span.set_tag(tags.HTTP_URL, url)
        # The trace context travels with the request as a `traceparent` header, and the baggage as a
        # `baggage` header: OpenTelemetry's inject writes both, from the current context (set_baggage()'s).
        headers = {}
        propagate.inject(headers)
        try:
            response = requests.get(url, headers=headers, timeout=PROXY_TIMEOUT)
        except requests.Timeout:
            raise GitHubError(504, f"the github-proxy did not answer within {PROXY_TIMEOUT:g} s") from None
        except requests.ConnectionError as error:
            if isinstance(error.args[0], urllib3.exceptions.ProtocolError):  # it connected, then hung up
                raise GitHubError(502, "the github-proxy closed the connection without answering") from None
            raise GitHubError(502, f"cannot connect to the github-proxy at {PROXY_URL}") from None
        span.set_tag(tags.HTTP_STATUS_CODE, response.status_code)
        if response.status_code >= 400:
            span.set_tag(tags.ERROR, True)
            span.log_kv({"event": "error", "message": f"the github-proxy answered {response.status_code}"})
        return read_proxy_answer(response)


def read_proxy_answer(response):
    """The proxy answers GitHub's stats, or {"error": ...} with the status and Retry-After we pass on."""
    try:
        body = response.json()
    except ValueError:
        raise GitHubError(502, f"the github-proxy answered {response.status_code} without JSON") from None
    if response.status_code == 200 and isinstance(body, list):
        return body
    message = body.get("error") if isinstance(body, dict) else None
    status = response.status_code if response.status_code >= 400 else 502
    raise GitHubError(
        status, message or f"the github-proxy answered {response.status_code}", response.headers.get("Retry-After")
    )


def clean_in_worker(stats):
    """Hand the stats to a worker through Redis and wait for its answer, at most WORKER_TIMEOUT."""
    with global_tracer().start_active_span("send_clean_job") as scope:
        span = scope.span
        span.set_tag(tags.SPAN_KIND, tags.SPAN_KIND_PRODUCER)
        span.set_tag(tags.COMPONENT, "redis")
        span.set_tag(tags.MESSAGE_BUS_DESTINATION, JOB_QUEUE)
        job_id = uuid.uuid4().hex
        span.set_tag("job.id", job_id)
        # The trace context travels inside the job, as a plain dict of the same headers.
        carrier = {}
        propagate.inject(carrier)
        # Each job has its own reply key: two requests for the same repo never get each other's answer.
        reply_to = f"contributors:reply:{job_id}"
        message = json.dumps({"job_id": job_id, "reply_to": reply_to, "stats": stats, "trace": carrier})
        if not waiting_turns.acquire(timeout=WORKER_TIMEOUT):
            raise WorkerError(503, f"the job queue is busy: {MAX_WAITING} requests waited for a worker all along")
        try:
            redis_client.lpush(JOB_QUEUE, message)
            reply = redis_client.brpop([reply_to], timeout=WORKER_TIMEOUT)
            if reply is None:
                redis_client.lrem(JOB_QUEUE, 1, message)  # no worker took it: take it back, nothing piles up
        except redis.RedisError as error:
            raise WorkerError(503, f"the job queue is down: Redis at {REDIS_URL} ({type(error).__name__})") from None
        finally:
            waiting_turns.release()
        if reply is None:
            trace_id = recorded_trace_id(span)
            raise WorkerError(504, f"no worker answered within {WORKER_TIMEOUT:g} s (trace {trace_id})")
        answer = json.loads(reply[1])
        if "error" in answer:
            raise WorkerError(502, f"the worker could not clean the data: {answer['error']}")
        return answer["contributors"]


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
    trace_id = recorded_trace_id(tracing.get_span())
    if trace_id:
        response.headers["X-Trace-Id"] = trace_id
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
    return error_response(404, "no such route: try /contributors/<owner>/<repo>")


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
    tracer = init_tracer("gateway")
    try:  # until Ctrl-C or SIGTERM, then the requests in flight are finished...
        serve(app, os.environ.get("APP_HOST", "127.0.0.1"), int(os.environ.get("APP_PORT", "8480")))
    finally:
        close_tracer(tracer)  # ...and either way the last spans are sent before the process exits
