"""Tracer setup: jaeger-client sends finished spans over UDP to a Jaeger agent.

The agent's address comes from JAEGER_AGENT_HOST and JAEGER_AGENT_PORT (default localhost:6831):
the workshop's trace store or a real Jaeger listen there. If nothing listens, spans are dropped
and the app keeps serving: tracing never takes the app down.
"""

import logging
import time

import flask_opentracing
from jaeger_client import Config
from opentracing import global_tracer


def init_tracer(service_name):
    """Create the process's tracer; it also becomes `opentracing.global_tracer()`."""
    config = Config(
        config={
            # Keep every trace. Always name a sampler: without one, jaeger-client asks an agent
            # on port 5778 for a sampling strategy and, meanwhile, keeps only 1 trace in 1000.
            "sampler": {"type": "const", "param": 1},
            "reporter_flush_interval": 0.2,  # send spans every 0.2 s (default 1 s)
            "logging": False,
        },
        service_name=service_name,
        validate=True,
    )
    return config.initialize_tracer()


class FlaskTracing(flask_opentracing.FlaskTracing):
    """flask-opentracing's request tracing, made safe for concurrent requests.

    flask-opentracing 2.0.0 files each request's span under Flask's `request` proxy, which is one
    object for every request: two requests at once could swap spans. This keeps them apart.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._current_scopes = ScopesByRequest()


class ScopesByRequest(dict):
    """A dict keyed by the request itself rather than by the proxy that stands for it."""

    def __setitem__(self, request, scope):
        super().__setitem__(_real(request), scope)

    def get(self, request, default=None):
        return super().get(_real(request), default)

    def pop(self, request, default=None):
        return super().pop(_real(request), default)


def _real(request):
    return request._get_current_object() if hasattr(request, "_get_current_object") else request


MAX_BAGGAGE_BYTES = 64  # per item, key and value: baggage travels with every call downstream


def set_baggage(span, key, value):
    """Set a baggage item on `span` (and so on every span after it, in every service), unless it is
    too big: an oversized item is dropped, with a log event on the span, and never forwarded."""
    size = len(key.encode()) + len(value.encode())
    if size > MAX_BAGGAGE_BYTES:
        span.log_kv({"event": "baggage.dropped", "key": key, "bytes": size, "limit": MAX_BAGGAGE_BYTES})
        logging.getLogger("tracing").warning("baggage %r dropped: %d bytes, more than %d", key, size, MAX_BAGGAGE_BYTES)
        return False
    span.set_baggage_item(key, value)
    return True


def close_tracer(tracer):
    """Send the spans still queued. close() does not wait for the sending thread, so we do."""
    tracer.close()
    time.sleep(1)


class TraceIdFilter(logging.Filter):
    """Log correlation: every log line names the trace and span it was written in."""

    def filter(self, record):
        span = global_tracer().active_span
        context = span.context if span is not None else None
        trace_id, span_id = getattr(context, "trace_id", None), getattr(context, "span_id", None)
        record.trace_id = f"{trace_id:016x}" if trace_id else "-"
        record.span_id = f"{span_id:016x}" if span_id else "-"
        return True


def correlate_logs():
    for handler in logging.getLogger().handlers:
        handler.addFilter(TraceIdFilter())
