"""Plumbing, not the lesson (you may skip this file): workarounds for the tracing libraries' shortcomings.

- `SpansLost`: OpenTelemetry's exporter logs every failed attempt to send spans; this says it plainly,
  once a minute.
- `FlaskTracing`: flask-opentracing's request tracing, made safe for concurrent requests.
"""

import logging
import time

import flask_opentracing


class SpansLost(logging.Filter):
    """The exporter logs each failed attempt to send spans (and retries for EXPORT_TIMEOUT): with no
    trace store, that is a line a second. This lets one through a minute, and says what it means."""

    def __init__(self):
        super().__init__()
        self.last_said = -60.0

    def filter(self, record):
        if record.levelno < logging.ERROR:
            return False  # "retrying in 1.2 s": the final failure, below, is what matters
        if time.monotonic() - self.last_said < 60:
            return False
        self.last_said = time.monotonic()
        record.msg, record.args = "spans dropped: no trace store took them (said at most once a minute)", ()
        return True


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
