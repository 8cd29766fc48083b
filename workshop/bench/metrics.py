"""What span metrics cost: ingest with and without them, a day's query, and their memory when full."""

from __future__ import annotations

import gc
import random
import statistics
import time
import tracemalloc

from werkzeug.datastructures import MultiDict

from workshop.tracestore import model
from workshop.tracestore.query import metrics_query
from workshop.tracestore.spanmetrics import BUCKET_US, MAX_CELLS, SpanMetrics, series_points
from workshop.tracestore.store import TraceStore


def ingest_cost(traces: int = 5_000, rounds: int = 7) -> tuple[list[float], list[float], list[float]]:
    """Spans a second into a TraceStore without span metrics and with them, each round (alternated, so that a
    busy moment costs both), in CPU time: what other processes take is not counted. And, in each round with
    them, the share of the ingest's time spent in the span metrics' own calls: the same comparison inside one
    run, which a machine busy with other work shifts far less than the rounds."""
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
    shares: list[float] = []

    def rate(with_metrics: bool) -> float:
        store = TraceStore()
        counting, spent = store.metrics.record_many, [0.0]

        def timed(spans, clock=time.perf_counter) -> None:
            began = clock()
            counting(spans)
            spent[0] += clock() - began

        store.metrics.record_many = timed if with_metrics else (lambda spans: None)  # type: ignore[method-assign]
        gc.collect()
        began, wall = time.process_time(), time.perf_counter()
        for batch in batches:
            store.add_spans(batch)
        store.metrics.snapshot([], set(), 0, 0)  # what is pending is counted too
        if with_metrics:
            shares.append(spent[0] / (time.perf_counter() - wall))
        return traces * 10 / (time.process_time() - began)

    without, with_ = [], []
    for _ in range(rounds):
        without.append(rate(False))
        with_.append(rate(True))
    return without, with_, shares


def a_day(metrics: SpanMetrics, operations: int, seed: int = 1) -> None:
    """A day of `operations` busy operations: each a span every 30 s, of a lognormal latency, 1% errors."""
    draw = random.Random(seed)
    now_us = int(time.time() * 1e6)
    for at in range(86_400 - 30, -1, -30):  # oldest first, as they would have come
        metrics.record_many(
            (
                "gateway",
                f"op{n}",
                "server",
                now_us - at * 1_000_000,
                int(draw.lognormvariate(9, 1)),
                draw.random() < 0.01,
            )
            for n in range(operations)
        )


def day_query(operations: int = 50, rounds: int = 5) -> list[float]:
    """Seconds for Jaeger UI's grouped p95 query (step 1 minute, rates over 10) over a day of `operations`."""
    metrics = SpanMetrics()
    a_day(metrics, operations)
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
    took = []
    for _ in range(rounds):
        began = time.perf_counter()
        series_points(metrics, query, "latencies")
        took.append(time.perf_counter() - began)
    return took


def spans_over_a_day(count: int, operations: int, seed: int = 2) -> list[tuple]:
    """`count` spans of `operations` operations at random times of the last day, in the order they came."""
    draw = random.Random(seed)
    now_us = int(time.time() * 1e6)
    starts = sorted(now_us - int(draw.random() * 86_400e6) for _ in range(count))
    return [
        ("gateway", f"op{draw.randrange(operations)}", "server", start, int(draw.lognormvariate(9, 1)), False)
        for start in starts
    ]


def memory(spans: int = 1_000_000, operations: int = 1_000) -> dict:
    """What the span metrics hold after `spans` spans of `operations` operations spread over a day, at random:
    MB (tracemalloc), buckets, series, and how fast they took them (a run without tracemalloc), in spans a second;
    then how fast a full one takes spans that each need a new bucket (see while_full)."""
    sent = spans_over_a_day(spans, operations)
    batches = [sent[n : n + 10] for n in range(0, len(sent), 10)]
    gc.collect()
    tracemalloc.start()
    metrics = SpanMetrics()
    for batch in batches:
        metrics.record_many(batch)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    timed = SpanMetrics()
    began = time.process_time()
    for batch in batches:
        timed.record_many(batch)
    rate = spans / (time.process_time() - began)
    full_rate, forgotten = while_full()
    return {
        "megabytes": held / 1e6,
        "cells": metrics.stats.cells,
        "series": metrics.stats.series,
        "spans_per_second": rate,
        "bytes_per_cell": held / max(metrics.stats.cells, 1),
        "full_spans_per_second": full_rate,
        "forgotten_while_full": forgotten,
    }


def while_full(series: int = 5_000) -> tuple[float, int]:
    """Spans a second into span metrics already holding MAX_CELLS buckets (`series` operations, the 40 buckets
    before now), each span needing a new one (the same operations, the next 10 buckets): the oldest buckets go to
    make room. And how many buckets went."""
    now_us = int(time.time() * 1e6) // BUCKET_US * BUCKET_US
    metrics = SpanMetrics()
    filled = [
        ("gateway", f"op{n}", "server", now_us - age * BUCKET_US, 5000, False)
        for age in range(1, 41)
        for n in range(series)
    ]
    for n in range(0, len(filled), 10):
        metrics.record_many(filled[n : n + 10])
    assert metrics.stats.cells >= MAX_CELLS, "not full: no figure while full"
    newer = [
        ("gateway", f"op{n}", "server", now_us + age * BUCKET_US, 5000, False)
        for age in range(10)
        for n in range(series)
    ]
    began = time.process_time()
    for n in range(0, len(newer), 10):
        metrics.record_many(newer[n : n + 10])
    return len(newer) / (time.process_time() - began), metrics.stats.forgotten_early


def median(values: list[float]) -> float:
    return statistics.median(values)
