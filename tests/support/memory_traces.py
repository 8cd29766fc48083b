"""The in-memory reporter's spans as the trace store holds them: through the receivers' own readers of
jaeger-client's Thrift batches and OpenTelemetry's OTLP export, into a real TraceStore."""

from __future__ import annotations

from itertools import groupby

from jaeger_client import Span as JaegerSpan
from jaeger_client import thrift as jaeger_thrift
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from workshop.tracestore.model import Json
from workshop.tracestore.query import TraceQuery
from workshop.tracestore.receivers.otlp import spans_from_export
from workshop.tracestore.receivers.thrift import spans_from_batch
from workshop.tracestore.store import TraceStore


def stored(spans: list) -> TraceStore:
    """A trace store holding `spans` (jaeger-client's and OpenTelemetry's finished spans, in any mix)."""
    store = TraceStore()
    jaeger = sorted((s for s in spans if isinstance(s, JaegerSpan)), key=lambda s: s.tracer.service_name)
    for service, of_service in groupby(jaeger, key=lambda s: s.tracer.service_name):
        batch = list(of_service)  # with its tracer's process tags (jaeger.version, hostname, ip), as it sends them
        process = jaeger_thrift.make_process(service, batch[0].tracer.tags, max_length=1024)
        store.add_spans(spans_from_batch(jaeger_thrift.make_jaeger_batch(batch, process)))
    otel = [s for s in spans if not isinstance(s, JaegerSpan)]
    if otel:
        records, _ = spans_from_export(encode_spans(otel))
        store.add_spans(records)
    return store


def traces(spans: list) -> dict[str, Json]:
    """Every trace of `spans`, by trace id, as Jaeger's API answers it."""
    store = stored(spans)
    return {t["traceID"]: t for t in store.find_lazily(TraceQuery(limit=1_000_000))}
