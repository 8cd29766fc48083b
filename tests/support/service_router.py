"""In-memory tracing for several services in one test process.

The stages call `opentracing.global_tracer()`. In a test the gateway, the proxy and the worker all run
in this one process, so the global tracer is a router: each server thread says which service it
serves, and the router hands its calls to that service's own jaeger-client tracer. Every tracer reports
to the same in-memory reporter, and each span keeps its real service name. From lesson 7 the router is
the OpenTracing shim over OpenTelemetry, whose global tracer provider routes the same way.
"""

from __future__ import annotations

import threading

import opentracing
from jaeger_client import Tracer
from jaeger_client.reporter import InMemoryReporter
from jaeger_client.sampler import ConstSampler
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.shim.opentracing_shim import create_tracer

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
        self.otel_provider = RoutingTracerProvider(self)
        self._shim = create_tracer(self.otel_provider)
        self.opentelemetry = False  # True: lesson 7, the OpenTracing shim over OpenTelemetry's SDK

    def serve_as(self, service: str) -> None:
        """From now on, this thread's spans belong to `service`."""
        self._local.service = service

    def tracer(self) -> Tracer:
        if self.opentelemetry:
            return self._shim
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


# --- OpenTelemetry (lessons 7 on) -------------------------------------------------------------------


class ReporterExporter(SpanExporter):
    """OpenTelemetry's finished spans into the same in-memory reporter as jaeger-client's."""

    def __init__(self, reporter: InMemoryReporter):
        self.reporter = reporter

    def export(self, spans) -> SpanExportResult:
        for span in spans:
            self.reporter.report_span(span)
        return SpanExportResult.SUCCESS


class RoutingTracerProvider(trace.TracerProvider):
    """OpenTelemetry's global tracer provider in the tests: each service's spans come from an SDK
    provider of its own (so each has its own `service.name`), chosen by the thread, as the router does."""

    def __init__(self, router: ServiceRouter):
        self.router = router
        self._providers: dict[str, TracerProvider] = {}
        self._lock = threading.Lock()

    def for_thread(self) -> TracerProvider:
        service = getattr(self.router._local, "service", DEFAULT_SERVICE)
        with self._lock:
            if service not in self._providers:
                provider = TracerProvider(resource=Resource.create({"service.name": service}))
                provider.add_span_processor(SimpleSpanProcessor(ReporterExporter(self.router.reporter)))
                self._providers[service] = provider
            return self._providers[service]

    def get_tracer(self, instrumenting_module_name, *args, **kwargs) -> trace.Tracer:
        return RoutingTracer(self, instrumenting_module_name, args, kwargs)


class RoutingTracer(trace.Tracer):
    def __init__(self, provider: RoutingTracerProvider, name: str, args: tuple, kwargs: dict):
        self.provider, self.name, self.args, self.kwargs = provider, name, args, kwargs

    def _tracer(self) -> trace.Tracer:
        return self.provider.for_thread().get_tracer(self.name, *self.args, **self.kwargs)

    def start_span(self, *args, **kwargs):
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args, **kwargs):
        return self._tracer().start_as_current_span(*args, **kwargs)
