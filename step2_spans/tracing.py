"""Tracer setup: jaeger-client sends finished spans over UDP to a Jaeger agent.

The agent's address comes from JAEGER_AGENT_HOST and JAEGER_AGENT_PORT (default localhost:6831):
the workshop's trace store or a real Jaeger listen there. If nothing listens, spans are dropped
and the app keeps serving: tracing never takes the app down.
"""

import logging
import time

from jaeger_client import Config
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


def close_tracer(tracer):
    """Send the spans still queued. close() does not wait for the sending thread, so we do."""
    tracer.close()
    time.sleep(1)
