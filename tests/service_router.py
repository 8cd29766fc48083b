"""In-memory tracing for several services in one test process.

The stages call `opentracing.global_tracer()`. In a test the gateway, the proxy and the worker all run
in this one process, so the global tracer is a router: each server thread says which service it
serves, and the router hands its calls to that service's own jaeger-client tracer. Every tracer reports
to the same in-memory reporter, and each span keeps its real service name.
"""

from __future__ import annotations

import threading

import opentracing
from jaeger_client import Tracer
from jaeger_client.reporter import InMemoryReporter
from jaeger_client.sampler import ConstSampler

DEFAULT_SERVICE = "contributors"


class ClearableReporter(InMemoryReporter):
    def clear(self) -> None:
        with self.lock:
            self.spans.clear()


class ServiceRouter(opentracing.Tracer):
    def __init__(self, reporter: InMemoryReporter):
        super().__init__()
        self.reporter = reporter
        self._tracers: dict[str, Tracer] = {}
        self._local = threading.local()
        self._lock = threading.Lock()

    def serve_as(self, service: str) -> None:
        """From now on, this thread's spans belong to `service`."""
        self._local.service = service

    def tracer(self) -> Tracer:
        service = getattr(self._local, "service", DEFAULT_SERVICE)
        with self._lock:
            if service not in self._tracers:
                self._tracers[service] = Tracer(service, self.reporter, ConstSampler(True))
            return self._tracers[service]

    @property
    def scope_manager(self):
        return self.tracer().scope_manager

    @property
    def sampler(self):
        return self.tracer().sampler

    @property
    def active_span(self):
        return self.tracer().active_span

    def start_active_span(self, *args, **kwargs):
        return self.tracer().start_active_span(*args, **kwargs)

    def start_span(self, *args, **kwargs):
        return self.tracer().start_span(*args, **kwargs)

    def inject(self, span_context, format, carrier):
        return self.tracer().inject(span_context, format, carrier)

    def extract(self, format, carrier):
        return self.tracer().extract(format, carrier)


def as_service(app, service: str, router: ServiceRouter):
    """A WSGI app whose request threads report as `service`."""

    def wsgi(environ, start_response):
        router.serve_as(service)
        return app(environ, start_response)

    return wsgi
