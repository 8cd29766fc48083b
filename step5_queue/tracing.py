"""Tracer setup: jaeger-client sends finished spans over UDP to a Jaeger agent.

The agent's address comes from JAEGER_AGENT_HOST and JAEGER_AGENT_PORT (default localhost:6831):
the workshop's trace store or a real Jaeger listen there. If nothing listens, spans are dropped
and the app keeps serving: tracing never takes the app down.
"""

import logging
import threading
import time

import tracing_fixes
from jaeger_client import Config
from opentracing import global_tracer
from tracing_fixes import DroppedSpans


def init_tracer(service_name):
    """Create the process's tracer; it also becomes `opentracing.global_tracer()`."""
    config = Config(
        config={
            # Keep every trace. Always name a sampler: without one, jaeger-client asks an agent
            # on port 5778 for a sampling strategy and, meanwhile, keeps only 1 trace in 1000.
            "sampler": {"type": "const", "param": 1},
            "reporter_flush_interval": 0.2,  # send spans every 0.2 s (default 1 s)
            "logging": False,  # True would log every span; DroppedSpans (tracing_fixes.py) says what matters
        },
        service_name=service_name,
        validate=True,
        metrics_factory=DroppedSpans(),
    )
    logging.getLogger("jaeger_tracing").setLevel(logging.WARNING)  # its start and stop notes hide the lesson
    return config.initialize_tracer()


class FlaskTracing(tracing_fixes.FlaskTracing):
    """flask-opentracing's request tracing (fixed in tracing_fixes.py), which also remembers each
    thread's last request, for TraceIdFilter."""

    def _after_request_fn(self, response=None, error=None):
        span = self.get_span()
        SERVED.context = span.context if span is not None else None  # see TraceIdFilter
        super()._after_request_fn(response, error)


SERVED = threading.local()  # the span context of the request this thread served last


def close_tracer(tracer):
    """Send the spans still queued. close() does not wait for the sending thread, so we do."""
    tracer.close()
    time.sleep(1)


class TraceIdFilter(logging.Filter):
    """Log correlation: every log line names the trace and span it was written in."""

    def filter(self, record):
        span = global_tracer().active_span
        # The server writes each request's access line just after the request's span ended: that
        # line names the span of the request this thread served.
        context = span.context if span is not None else getattr(SERVED, "context", None)
        trace_id, span_id = getattr(context, "trace_id", None), getattr(context, "span_id", None)
        record.trace_id = f"{trace_id:016x}" if trace_id else "-"
        record.span_id = f"{span_id:016x}" if span_id else "-"
        return True


def correlate_logs():
    for handler in logging.getLogger().handlers:
        handler.addFilter(TraceIdFilter())
