"""Tracer setup: OpenTelemetry, with nothing of OpenTracing left.

The SDK sends spans as OTLP over HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318:
the workshop's trace store or a real Jaeger v2 listen there). If nothing listens, spans are dropped
and the app keeps serving: tracing never takes the app down. Everything else is set the standard way,
by OpenTelemetry's own environment variables: the sampler (OTEL_TRACES_SAMPLER, default: keep a trace
if its parent was kept, and every new one), the propagators (OTEL_PROPAGATORS, default below).
"""

import logging
import os

os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")  # the instrumentations: current HTTP names

from opentelemetry import baggage, context, propagate, trace  # noqa: E402 (after the setting above)
from opentelemetry.baggage.propagation import W3CBaggagePropagator  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.instrumentation.logging import LoggingInstrumentor  # noqa: E402
from opentelemetry.instrumentation.propagators import (  # noqa: E402
    TraceResponsePropagator,
    set_global_response_propagator,
)
from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: E402
from opentelemetry.instrumentation.requests import RequestsInstrumentor  # noqa: E402
from opentelemetry.propagators.composite import CompositePropagator  # noqa: E402
from opentelemetry.propagators.jaeger import JaegerPropagator  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator  # noqa: E402
from tracing_fixes import NotToThirdParties, SpansLost, to_a_third_party  # noqa: E402, F401 (for github_proxy)

EXPORT_TIMEOUT = 2  # seconds to try sending one batch of spans (the SDK's default, 10, delays every exit)
LOG_FORMAT = "[trace=%(otelTraceID)s span=%(otelSpanID)s] %(levelname)s %(name)s: %(message)s"  # `make` adds the time


def init_tracer(service_name):
    """Create the process's tracer provider (close_tracer flushes it). The instrumentations and
    `trace.get_tracer(...)` use it from then on."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    # Spans are sent in batches from a thread of their own, every 0.2 s (default 5 s).
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=EXPORT_TIMEOUT), schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    logging.getLogger(OTLPSpanExporter.__module__).addFilter(SpansLost())  # the exporter's own logger
    # Jaeger's headers and W3C Trace Context and Baggage, so a service still on jaeger-client joins the
    # same trace, both ways. Reading a request, each propagator that finds its header overrides the ones
    # before it: W3C's last, so a valid `traceparent` wins over an `uber-trace-id` sent with it.
    # OTEL_PROPAGATORS=jaeger,tracecontext,baggage says the same; set, it wins.
    if "OTEL_PROPAGATORS" not in os.environ:
        propagators = [JaegerPropagator(), TraceContextTextMapPropagator(), W3CBaggagePropagator()]
        propagate.set_global_textmap(CompositePropagator(propagators))
    # ... but not to GitHub, which is not ours: see to_a_third_party() (and lesson 8's README).
    propagate.set_global_textmap(NotToThirdParties(propagate.get_global_textmap()))
    return provider


def instrument_libraries():
    """A CLIENT span for every call made with `requests`, with the trace context and baggage written into
    its headers, and a span for every Redis command. Process-wide: called once, after init_tracer."""
    RequestsInstrumentor().instrument()
    RedisInstrumentor().instrument()


def instrument_logs():
    """Log correlation, by OpenTelemetry's logging instrumentation: each record gets the trace and span
    ids of the span current where it was written (0 outside any span)."""
    LoggingInstrumentor().instrument(inject_trace_context=True, enable_log_auto_instrumentation=False)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)


# Every answer names its trace in a W3C `traceresponse` header: 00-<trace id>-<span id>-<flags>.
set_global_response_propagator(TraceResponsePropagator())


def recorded_trace_id(span):
    """The span's trace id, as Jaeger shows it (32 hex digits), or None if the trace is not recorded
    (a caller can ask for that: `traceparent: 00-...-00`)."""
    span_context = span.get_span_context()
    if not span_context.is_valid or not span_context.trace_flags.sampled:
        return None
    return trace.format_trace_id(span_context.trace_id)


MAX_BAGGAGE_BYTES = 64  # per item, key and value: baggage travels with every call downstream


def set_baggage(span, key, value):
    """Set a baggage item for the rest of this request (every span after it, in every service), unless
    it is too big: an oversized item is dropped, with an event on the span, and never forwarded."""
    size = len(key.encode()) + len(value.encode())
    if size > MAX_BAGGAGE_BYTES:
        span.add_event("baggage.dropped", {"key": key, "bytes": size, "limit": MAX_BAGGAGE_BYTES})
        logging.getLogger("tracing").warning("baggage %r dropped: %d bytes, more than %d", key, size, MAX_BAGGAGE_BYTES)
        return False
    context.attach(baggage.set_baggage(key, value))  # undone with the request's context, when it ends
    span.add_event("baggage", {"key": key, "value": value})
    return True


def get_baggage(span, key):
    """A baggage item, as a service downstream reads it: baggage is input like any other. An item
    bigger than MAX_BAGGAGE_BYTES (no gateway of ours sets one) is ignored, with an event."""
    value = baggage.get_baggage(key)
    if value is not None and len(key.encode()) + len(str(value).encode()) > MAX_BAGGAGE_BYTES:
        span.add_event("baggage.ignored", {"key": key, "limit": MAX_BAGGAGE_BYTES})
        return None
    return value


def close_tracer(provider):
    """Send the spans still queued (waiting at most EXPORT_TIMEOUT if no trace store answers)."""
    provider.shutdown()
