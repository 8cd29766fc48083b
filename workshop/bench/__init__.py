"""`make bench`: what tracing costs the app, and what the trace store can take. A benchmark, not a test.

1. Request latency p50/p95 of lessons 2 and 3 against lesson 1, and of lessons 6 and 8 (every process
   of each: three services and Redis) against lesson 1, on the same fake GitHub (no 202s, so
   the planted delay does not hide the cost of tracing), each stage's real processes sending their
   spans to a real trace store; and what one span costs jaeger-client and OpenTelemetry's SDK.
2. The store's ingest rate (spans/s) when spans arrive as fast as one sender can send them, over UDP
   (jaeger-client) and over OTLP/HTTP (an OpenTelemetry SDK), and how many spans it loses at a steady
   5,000 spans/s.
3. The store's memory while it holds its maximum number of traces and four times as many are sent.
4. The time from `make step3 ONCE=1` (venv ready) to the printed trace.
"""

from workshop.bench.report import run_benchmarks

__all__ = ["run_benchmarks"]
