"""What one span costs the thread that makes it: jaeger-client (lessons 2-6) against OpenTelemetry's SDK
(lessons 7-8), each sending to a real trace store as the lessons do (UDP; OTLP/HTTP)."""

from __future__ import annotations

import time

from jaeger_client import Config
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from workshop.bench.processes import collector


def per_span_cost(spans: int = 20_000) -> dict[str, float]:
    """Microseconds per span (start, a tag, finish) in the calling thread, for each SDK."""
    with collector(max_traces=spans) as store:
        jaeger = Config(
            config={
                "sampler": {"type": "const", "param": 1},
                "reporter_flush_interval": 0.2,
                "logging": False,
                "reporter_queue_size": spans + 1_000,
                "local_agent": {"reporting_host": "127.0.0.1", "reporting_port": store.jaeger_compact_port},
            },
            service_name="bench",
            validate=True,
        ).new_tracer()  # as lessons 2-6 make theirs (new_tracer: initialize_tracer works once a process)
        provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{store.otlp_http_port}/v1/traces", timeout=5)
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=200, max_queue_size=spans + 1_000)
        )
        otel = provider.get_tracer("bench")

        def jaeger_span(n: int) -> None:
            span = jaeger.start_span("operation")
            span.set_tag("n", n)
            span.finish()

        def otel_span(n: int) -> None:
            span = otel.start_span("operation")
            span.set_attribute("n", n)
            span.end()

        costs = {"jaeger-client": _time(jaeger_span, spans), "OpenTelemetry SDK": _time(otel_span, spans)}
        jaeger.close()
        provider.shutdown()
        time.sleep(1)  # jaeger-client sends from a thread of its own
    return costs


def _time(make_span, spans: int) -> float:
    for n in range(1_000):  # warm up
        make_span(n)
    started = time.perf_counter()
    for n in range(spans):
        make_span(n)
    return (time.perf_counter() - started) / spans * 1e6
