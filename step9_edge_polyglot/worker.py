"""The worker: cleans GitHub's stats for the gateway (lesson 5 moved clean_github_data here from app.py).

It takes jobs from the Redis list `contributors:jobs`. A job is JSON:

    {"job_id": "...", "reply_to": "contributors:reply:<job id>", "stats": [...GitHub's stats...],
     "trace": {"traceparent": "...", "baggage": "..."}}

and the worker pushes {"contributors": [...]} (or {"error": "..."}) onto the job's own `reply_to` list,
which expires after REPLY_TTL seconds if nobody reads it. The trace context comes inside the job, so the
worker's spans join the gateway's trace.
"""

import contextlib
import json
import logging
import os
import re
import signal
import threading
from collections import Counter

import redis
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind, StatusCode
from tracing import close_tracer, get_baggage, init_tracer, instrument_libraries, instrument_logs

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6380/0")
JOB_QUEUE = "contributors:jobs"
REPLY_TTL = 60  # seconds a reply waits to be read before Redis deletes it
POLL = 1.0  # seconds each wait for a job lasts, so a stop request is noticed

instrument_logs()
log = logging.getLogger("worker")
tracer = trace.get_tracer("worker")


def run(client, stop):
    """Take jobs until `stop` is set; the job in hand is always finished first."""
    log.info("waiting for jobs on %s at %s", JOB_QUEUE, REDIS_URL)
    while not stop.is_set():
        try:
            with suppress_instrumentation():  # waiting for work is no trace: no span for each empty poll
                job = client.brpop([JOB_QUEUE], timeout=POLL)
        except redis.RedisError as error:  # Redis down: keep trying, it may come back
            if not stop.is_set():  # (when everything stops at once, Redis may go first: not worth a warning)
                log.warning("cannot take jobs from Redis at %s (%s): trying again in 1 s", REDIS_URL, describe(error))
            stop.wait(1)
            continue
        if job is None:
            continue
        try:
            handle_clean_job(client, job[1])
        except redis.RedisError as error:
            log.warning("cannot answer a job through Redis at %s (%s)", REDIS_URL, describe(error))
        except Exception as error:  # a bug: the job is answered with it, and the worker goes on to the next
            log.exception("a job failed")
            answer_failed_job(client, job[1], error)


def describe(error):
    return f"{type(error).__name__}: {error}"


def answer_failed_job(client, message, error):
    """Tell the gateway what went wrong, so it need not wait for an answer that will not come."""
    job, _ = read_job(message)
    with contextlib.suppress(redis.RedisError):  # if Redis fails too, the log line above is all there is
        reply(client, job, {"error": f"the worker failed: {describe(error)}"})


def handle_clean_job(client, message):
    job, problem = read_job(message)
    # The gateway waits for this answer, so the worker's span is a child of the gateway's: the job's
    # trace context (and baggage) is made current, and the span starts under it.
    with trace_context(job), tracer.start_as_current_span("handle_clean_job", kind=SpanKind.CONSUMER) as span:
        span.set_attributes(
            {
                "messaging.system": "redis",
                "messaging.destination.name": JOB_QUEUE,
                "messaging.operation.type": "process",
            }
        )
        if problem:
            log.warning("malformed job: %s", problem)
            span.set_status(StatusCode.ERROR, f"malformed job: {problem}")
            reply(client, job, {"error": f"malformed job: {problem}"})
            return
        span.set_attribute("messaging.message.id", job["job_id"])
        # Baggage from the gateway, inside the job's trace context: the message itself is unchanged.
        span.set_attribute("baggage.client", get_baggage(span, "client") or "-")
        top = top_from_baggage(span)
        try:
            contributors = clean_github_data(job["stats"])
            if top:  # the client asked for the top N only: the worker sends no more
                span.set_attribute("baggage.contributors.top", top)
                contributors = contributors[:top]
        except Exception as error:  # stats of the wrong shape, or a bug: answer, mark, keep running
            log.exception("cannot clean job %s", job["job_id"])
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
            reply(client, job, {"error": f"{type(error).__name__}: {error}"})
            return
        reply(client, job, {"contributors": contributors})


def top_from_baggage(span):
    """How many contributors the client wants (1 to 100), or None: checked here too, where it is used."""
    top = get_baggage(span, "contributors.top")
    if top is None:
        return None
    if re.fullmatch(r"[0-9]{1,3}", top) and 1 <= int(top) <= 100:
        return int(top)
    span.add_event("baggage.invalid", {"key": "contributors.top", "value": top})
    return None


def read_job(message):
    """(the job, None), or (whatever could be read of it, what is wrong with it)."""
    try:
        job = json.loads(message)
    except (ValueError, RecursionError):  # a job is input from outside: even 10,000 nested brackets
        return {}, "not JSON"
    if not isinstance(job, dict):
        return {}, "not a JSON object"
    if not isinstance(job.get("reply_to"), str) or not job["reply_to"].startswith("contributors:reply:"):
        return job, "no reply_to"
    if not isinstance(job.get("job_id"), str) or not isinstance(job.get("stats"), list):
        return job, "a job needs a job_id and a list of stats"
    return job, None


@contextlib.contextmanager
def trace_context(job):
    """The gateway's trace context and baggage, from inside the job, current for the block; none (a new
    trace) if it is missing or garbled. A message body is not a header: no instrumentation reads it."""
    carrier = job.get("trace")
    if not isinstance(carrier, dict):
        carrier = {}
    token = context.attach(propagate.extract({str(k): str(v) for k, v in carrier.items()}))
    try:
        yield
    finally:
        context.detach(token)


def reply(client, job, answer):
    reply_to = job.get("reply_to") if isinstance(job, dict) else None
    if not isinstance(reply_to, str) or not reply_to.startswith("contributors:reply:"):
        return  # nowhere to answer: the log line and the error span are all there is
    with client.pipeline() as pipe:
        pipe.lpush(reply_to, json.dumps(answer))
        pipe.expire(reply_to, REPLY_TTL)
        pipe.execute()


def clean_github_data(stats):
    """Commits per login, most first; entries with no GitHub account (author null) are dropped."""
    with tracer.start_as_current_span("clean_github_data") as span:
        commits = Counter()
        for entry in stats:
            if entry.get("author"):
                commits[entry["author"]["login"]] += entry["total"]
        ranked = sorted(commits.items(), key=lambda item: (-item[1], item[0]))
        span.set_attribute("contributors.count", len(ranked))
        return [{"login": login, "commits": count} for login, count in ranked]


if __name__ == "__main__":
    provider = init_tracer("worker")
    instrument_libraries()
    stop = threading.Event()
    # SIGTERM and Ctrl-C ask the loop to stop: the job in hand is finished and answered first.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=POLL + 5)
    try:
        run(client, stop)
    finally:
        close_tracer(provider)  # the last job's spans are sent before the process exits
