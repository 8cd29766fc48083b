"""Plumbing, not the lesson (you may skip this file): workarounds for the tracing libraries' shortcomings.

- `DroppedSpans`: jaeger-client drops spans silently when it cannot send them; this says so in the log.
- `FlaskTracing`: flask-opentracing's request tracing, made safe for concurrent requests, and careful
  with the `uber-trace-id` and `jaeger-debug-id` headers, which are input from outside.
"""

import logging
import re
import time
from urllib.parse import unquote

import flask_opentracing
from flask import request
from jaeger_client.constants import SAMPLED_FLAG
from jaeger_client.metrics import MetricsFactory


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
        # jaeger-debug-id names a debug trace the client asks for: jaeger-client stores it as a tag, of
        # any size. One longer than a baggage item may be is ignored.
        debug_id = request.environ.get("HTTP_JAEGER_DEBUG_ID")
        if debug_id is not None and len(debug_id.encode("latin-1", "replace")) > MAX_DEBUG_ID_BYTES:
            logging.getLogger("tracing").warning("jaeger-debug-id of %d bytes ignored", len(debug_id))
            del request.environ["HTTP_JAEGER_DEBUG_ID"]
        super()._before_request_fn(attributes)
        # Baggage headers but no trace id: jaeger-client would never record this new trace. The
        # sampler decides, as for any new trace.
        span = self.get_span()
        untraced = "HTTP_UBER_TRACE_ID" not in request.environ and not span.is_sampled()
        if untraced and self.tracer.sampler.is_sampled(span.context.trace_id, span.operation_name)[0]:
            span.context.flags |= SAMPLED_FLAG


MAX_DEBUG_ID_BYTES = 64

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
