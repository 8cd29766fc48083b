"""Plumbing, not the lesson (you may skip this file): workarounds for the tracing libraries' shortcomings.

- `SpansLost`: OpenTelemetry's exporter logs every failed attempt to send spans; this says it plainly,
  once a minute.
"""

import logging
import time


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
