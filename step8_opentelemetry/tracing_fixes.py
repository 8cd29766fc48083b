"""Plumbing, not the lesson (you may skip this file): workarounds for the tracing libraries' shortcomings.

- `SpansLost`: OpenTelemetry's exporter logs every failed attempt to send spans; this says it plainly,
  once a minute.
- `NotToThirdParties` and `to_a_third_party()`: the instrumentations write the trace context and the
  baggage into every call they trace, wherever it goes, and have no setting against it. A call made
  within `to_a_third_party()` keeps its CLIENT span, and gets none of those headers.
"""

import contextlib
import logging
import time

from opentelemetry import context
from opentelemetry.propagators.textmap import TextMapPropagator, default_getter, default_setter

THIRD_PARTY = context.create_key("call to a third party")


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


@contextlib.contextmanager
def to_a_third_party():
    """Calls made within: traced, but with no trace context and no baggage in their headers."""
    token = context.attach(context.set_value(THIRD_PARTY, True))
    try:
        yield
    finally:
        context.detach(token)


class NotToThirdParties(TextMapPropagator):
    """Wraps the process's propagator: it writes nothing into a call made within to_a_third_party()."""

    def __init__(self, propagator):
        self.propagator = propagator

    def extract(self, carrier, context=None, getter=default_getter):
        return self.propagator.extract(carrier, context, getter=getter)

    def inject(self, carrier, context=None, setter=default_setter):
        if not _is_third_party(context):
            self.propagator.inject(carrier, context, setter=setter)

    @property
    def fields(self):
        return self.propagator.fields


def _is_third_party(ctx):
    return bool(context.get_value(THIRD_PARTY, ctx))
