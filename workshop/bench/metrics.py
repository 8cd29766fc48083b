"""What span metrics cost: ingest with and without them, a day's query, and their memory."""

from __future__ import annotations

import time
import tracemalloc

from werkzeug.datastructures import MultiDict

from workshop.tracestore import model
from workshop.tracestore.query import metrics_query
from workshop.tracestore.spanmetrics import SpanMetrics, series_points
from workshop.tracestore.store import TraceStore


def ingest_cost(traces: int = 5_000, rounds: int = 3) -> tuple[float, float]:
    """Spans a second into a TraceStore without span metrics and with them (the best of `rounds` each)."""
    process = model.process("bench", [model.string_tag("hostname", "bench")])
    now = int(time.time() * 1e6)
    batches = [
        [
            (
                model.span(
                    f"{t + 1:016x}",
                    f"{t * 10 + m + 1:016x}",
                    f"op{m}",
                    [],
                    now + m,
                    1000 * m,
                    [model.string_tag("span.kind", "server"), model.tag("http.status_code", "int64", 200)],
                    [],
                ),
                process,
            )
            for m in range(10)
        ]
        for t in range(traces)
    ]

    def rate(with_metrics: bool) -> float:
        store = TraceStore()
        if not with_metrics:
            store.metrics.record_many = lambda spans: None  # type: ignore[method-assign]
        began = time.perf_counter()
        for batch in batches:
            store.add_spans(batch)
        return traces * 10 / (time.perf_counter() - began)

    without, with_ = [], []
    for _ in range(rounds):  # alternated, so that a busy moment costs both
        without.append(rate(False))
        with_.append(rate(True))
    return max(without), max(with_)


def day_query(operations: int = 50) -> float:
    """Seconds for Jaeger UI's grouped p95 query over a day of `operations` busy operations (a point a minute)."""
    metrics = SpanMetrics()
    now_us = int(time.time() * 1e6)
    for at in range(0, 86_400, 30):
        for n in range(operations):
            metrics.record("gateway", f"op{n}", "server", now_us - at * 1_000_000, (n + 1) * 1000, n == 0)
    query = metrics_query(
        MultiDict(
            {
                "service": "gateway",
                "groupByOperation": "true",
                "quantile": "0.95",
                "lookback": "86400000",
                "step": "60000",
                "ratePer": "600000",
            }
        ),
        latencies=True,
    )
    began = time.perf_counter()
    series_points(metrics, query, "latencies")
    return time.perf_counter() - began


def memory(spans: int = 1_000_000, operations: int = 1_000) -> tuple[float, int]:
    """MB the span metrics hold after `spans` spans of `operations` operations over an hour; and their cells."""
    tracemalloc.start()
    metrics = SpanMetrics()
    now_us = int(time.time() * 1e6)
    for n in range(spans):
        metrics.record("gateway", f"op{n % operations}", "server", now_us - (n % 3600) * 1_000_000, 5000, False)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held / 1e6, metrics.stats.cells
