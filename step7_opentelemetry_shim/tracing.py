"""Tracer setup: the OpenTracing API the lessons use, on an OpenTelemetry SDK underneath.

OpenTracing's promise was that the tracer behind its API can be swapped: this is the swap. The
services still call `global_tracer().start_active_span(...)`, `span.set_tag(...)`, `span.log_kv(...)`
and flask-opentracing still makes a span of each request; OpenTelemetry's OpenTracing shim turns each
call into OpenTelemetry's, and the SDK sends the spans as OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT
(default http://localhost:4318: the workshop's trace store or a real Jaeger v2 listen there). If nothing
listens, spans are dropped and the app keeps serving: tracing never takes the app down.

The trace context travels as W3C Trace Context (`traceparent`, `tracestate`) and W3C Baggage
(`baggage`): OpenTelemetry's defaults (OTEL_PROPAGATORS=tracecontext,baggage).
"""

import contextlib
import logging
import threading

import opentracing
import tracing_fixes
from flask import request
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.shim.opentracing_shim import create_tracer
from tracing_fixes import SpansLost

EXPORT_TIMEOUT = 2  # seconds to try sending one batch of spans (the SDK's default, 10, delays every exit)


def init_tracer(service_name):
    """Create the process's tracer: an OpenTelemetry tracer provider, wrapped in the OpenTracing shim
    that becomes `opentracing.global_tracer()`. Returns the provider (close_tracer flushes it)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    # Spans are sent in batches from a thread of their own, every 0.2 s (default 5 s).
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=EXPORT_TIMEOUT), schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    opentracing.set_global_tracer(create_tracer(provider))
    logging.getLogger(OTLPSpanExporter.__module__).addFilter(SpansLost())  # the exporter's own logger
    return provider


class FlaskTracing(tracing_fixes.FlaskTracing):
    """flask-opentracing's request tracing (fixed in tracing_fixes.py), which also remembers each
    thread's last request, for TraceIdFilter, and carries baggage: the shim's extract() reads the
    trace context but drops the baggage; this reads the baggage with OpenTelemetry's own propagator,
    and makes it current for the request."""

    def _before_request_fn(self, attributes):
        request.environ["tracing.context"] = context.attach(propagate.extract(request.headers))
        super()._before_request_fn(attributes)

    def _after_request_fn(self, response=None, error=None):
        span = self.get_span()
        SERVED.context = span.unwrap().get_span_context() if span is not None else None  # see TraceIdFilter
        super()._after_request_fn(response, error)
        token = request.environ.pop("tracing.context", None)
        if token is not None:
            context.detach(token)


SERVED = threading.local()  # the span context of the request this thread served last


def recorded_trace_id(span):
    """The span's trace id, as Jaeger shows it (32 hex digits), or None if the trace is not recorded
    (a caller can ask for that: `traceparent: 00-...-00`)."""
    span_context = span.unwrap().get_span_context() if span is not None else None
    if span_context is None or not span_context.trace_flags.sampled:
        return None
    return trace.format_trace_id(span_context.trace_id)


@contextlib.contextmanager
def context_from(carrier):
    """The trace context and baggage in `carrier` (a dict of headers), current inside the block, so the
    spans started there join that trace. The shim's extract() would drop the baggage; this reads it."""
    token = context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)


MAX_BAGGAGE_BYTES = 64  # per item, key and value: baggage travels with every call downstream


def set_baggage(span, key, value):
    """Set a baggage item for the rest of this request (every span after it, in every service), unless
    it is too big: an oversized item is dropped, with a log event on the span, and never forwarded.
    OpenTelemetry's baggage lives in the current context, not in a span: the shim's
    span.set_baggage_item() would keep it in that one span, and send it nowhere."""
    size = len(key.encode()) + len(value.encode())
    if size > MAX_BAGGAGE_BYTES:
        span.log_kv({"event": "baggage.dropped", "key": key, "bytes": size, "limit": MAX_BAGGAGE_BYTES})
        logging.getLogger("tracing").warning("baggage %r dropped: %d bytes, more than %d", key, size, MAX_BAGGAGE_BYTES)
        return False
    context.attach(baggage.set_baggage(key, value))  # undone with the request's context, when it ends
    span.log_kv({"event": "baggage", "key": key, "value": value})  # jaeger-client logged this by itself
    return True


def get_baggage(span, key):
    """A baggage item, as a service downstream reads it: baggage is input like any other. An item
    bigger than MAX_BAGGAGE_BYTES (no gateway of ours sets one) is ignored, with a log event."""
    value = baggage.get_baggage(key)
    if value is not None and len(key.encode()) + len(str(value).encode()) > MAX_BAGGAGE_BYTES:
        span.log_kv({"event": "baggage.ignored", "key": key, "limit": MAX_BAGGAGE_BYTES})
        return None
    return value


def close_tracer(provider):
    """Send the spans still queued (waiting at most EXPORT_TIMEOUT if no trace store answers)."""
    provider.shutdown()


class TraceIdFilter(logging.Filter):
    """Log correlation: every log line names the trace and span it was written in."""

    def filter(self, record):
        current = trace.get_current_span().get_span_context()
        # The server writes each request's access line just after the request's span ended: that
        # line names the span of the request this thread served.
        span_context = current if current.is_valid else getattr(SERVED, "context", None)
        valid = span_context is not None and span_context.is_valid
        record.trace_id = trace.format_trace_id(span_context.trace_id) if valid else "-"
        record.span_id = trace.format_span_id(span_context.span_id) if valid else "-"
        return True


def correlate_logs():
    for handler in logging.getLogger().handlers:
        handler.addFilter(TraceIdFilter())
