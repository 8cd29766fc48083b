"""Tracer setup: jaeger-client sends finished spans over UDP to a Jaeger agent.

The agent's address comes from JAEGER_AGENT_HOST and JAEGER_AGENT_PORT (default localhost:6831):
the workshop's trace store or a real Jaeger listen there. If nothing listens, spans are dropped
and the app keeps serving: tracing never takes the app down.
"""

import logging
import re
import time
from urllib.parse import unquote

import flask_opentracing
from flask import request
from jaeger_client import Config
from jaeger_client.constants import SAMPLED_FLAG
from jaeger_client.metrics import MetricsFactory


def init_tracer(service_name):
    """Create the process's tracer; it also becomes `opentracing.global_tracer()`."""
    config = Config(
        config={
            # Keep every trace. Always name a sampler: without one, jaeger-client asks an agent
            # on port 5778 for a sampling strategy and, meanwhile, keeps only 1 trace in 1000.
            "sampler": {"type": "const", "param": 1},
            "reporter_flush_interval": 0.2,  # send spans every 0.2 s (default 1 s)
            "logging": False,  # True would log every span; DroppedSpans below says what matters
        },
        service_name=service_name,
        validate=True,
        metrics_factory=DroppedSpans(),
    )
    logging.getLogger("jaeger_tracing").setLevel(logging.WARNING)  # its start and stop notes hide the lesson
    return config.initialize_tracer()


class DroppedSpans(MetricsFactory):
    """jaeger-client counts the spans it drops (its queue of `reporter_queue_size`, 100, was full, or
    sending failed) but says nothing: this logs it, at most once a minute."""

    def __init__(self):
        super().__init__()
        self.dropped, self.last_said = 0, 0.0

    def create_counter(self, name, tags=None):
        if name == "jaeger:reporter_spans" and (tags or {}).get("result") in ("dropped", "err"):
            return self.count
        return super().create_counter(name, tags)

    def count(self, spans):
        self.dropped += spans
        if time.monotonic() - self.last_said >= 60:
            self.last_said = time.monotonic()
            logging.getLogger("tracing").warning(
                "%d spans dropped so far: the tracer's queue was full, or no trace store took them", self.dropped
            )


class FlaskTracing(flask_opentracing.FlaskTracing):
    """flask-opentracing's request tracing, made safe for concurrent requests.

    flask-opentracing 2.0.0 files each request's span under Flask's `request` proxy, which is one
    object for every request: two requests at once could swap spans. This keeps them apart.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._current_scopes = ScopesByRequest()

    def _before_request_fn(self, attributes):
        # A trace header is input from outside. jaeger-client accepts ids it cannot send (a span id
        # over 64 bits), and then loses other requests' spans too: an invalid one starts a new trace.
        header = request.environ.get("HTTP_UBER_TRACE_ID")
        if header is not None and not TRACE_CONTEXT.fullmatch(unquote(header)):
            logging.getLogger("tracing").warning("invalid uber-trace-id ignored: %.80r", header)
            del request.environ["HTTP_UBER_TRACE_ID"]
        super()._before_request_fn(attributes)
        # Baggage headers but no trace id: jaeger-client would never record this new trace. The
        # sampler decides, as for any new trace.
        span = self.get_span()
        untraced = "HTTP_UBER_TRACE_ID" not in request.environ and not span.is_sampled()
        if untraced and self.tracer.sampler.is_sampled(span.context.trace_id, span.operation_name)[0]:
            span.context.flags |= SAMPLED_FLAG


# uber-trace-id is {trace id}:{span id}:{parent span id}:{flags}, in hex: 128, 64, 64 and 8 bits at most
TRACE_CONTEXT = re.compile(r"[0-9a-f]{1,32}:[0-9a-f]{1,16}:[0-9a-f]{1,16}:[0-9a-f]{1,2}", re.IGNORECASE)


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


def close_tracer(tracer):
    """Send the spans still queued. close() does not wait for the sending thread, so we do."""
    tracer.close()
    time.sleep(1)
