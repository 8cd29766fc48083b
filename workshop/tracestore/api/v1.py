"""Jaeger's query API v1 over the store, in Jaeger's JSON shapes, so Jaeger's tools can read it.

GET /api/services
GET /api/services/{service}/operations
GET /api/operations?service=...&spanKind=...
GET /api/traces?service=&operation=&tags={"k":"v"}&minDuration=&maxDuration=&start=&end=&lookback=&limit=
GET /api/traces/{traceID}
GET /api/dependencies?endTs=&lookback=
GET /api/metrics/latencies|calls|errors?service=&groupByOperation=&endTs=&lookback=&step=&ratePer=&spanKind=
    (&quantile= for latencies): the store's span metrics, as Jaeger's metrics API answers them
GET /api/stats      (not Jaeger's: what the store's receivers took)
POST /api/transform (an OTLP JSON file, as Jaeger UI's "Upload" sends it) -> the traces in it, in /api/traces's
                    shape; nothing is stored

Every answer is Jaeger's envelope, `{"data", "total", "limit", "offset", "errors"}`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from workshop.tracestore.api import stats_of, store_of
from workshop.tracestore.model import BadInput, SpanRecord, assemble_trace
from workshop.tracestore.query import metrics_query, trace_id, v1_required, v1_trace_query, whole_number
from workshop.tracestore.receivers.http_body import read_body
from workshop.tracestore.receivers.otlp import JSON, read_export, spans_from_export
from workshop.tracestore.spanmetrics import series_points

api_v1 = Blueprint("api_v1", __name__, url_prefix="/api")


def envelope_of(data: Any, total: int = 0, errors: list | None = None) -> dict:
    """Jaeger's answer, as a dict: what every API v1 answer is."""
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def envelope(data: Any, total: int = 0, status: int = 200, errors: list | None = None) -> Response:
    response = jsonify(envelope_of(data, total, errors))
    response.status_code = status
    return response


STREAM_CHUNK = 1 << 16  # characters a written piece holds, at least: one write (and one HTTP chunk) per trace
# made a 1,000-trace answer 1,000 chunks, which the client read header by header (half of `explain --recent`)


def streamed_envelope(items: Iterable[Any]) -> Response:
    """`envelope(list(items))`, byte for byte, written in pieces of STREAM_CHUNK: a large answer is never whole in
    memory."""
    dumps = current_app.json.dumps

    def pieces() -> Iterator[str]:
        yield '{"data":['
        held: list[str] = []
        size = 0
        for n, item in enumerate(items):
            held.append(("," if n else "") + dumps(item, separators=(",", ":")))
            size += len(held[-1])
            if size >= STREAM_CHUNK:
                yield "".join(held)
                held, size = [], 0
        yield "".join(held) + '],"total":0,"limit":0,"offset":0,"errors":null}\n'

    return Response(pieces(), mimetype="application/json")


def error(status: int, message: str) -> Response:
    return envelope(None, status=status, errors=[{"code": status, "msg": message}])


@api_v1.errorhandler(BadInput)
def bad_input(problem: BadInput) -> Response:
    return error(problem.status, str(problem))


@api_v1.get("/services")
def services() -> Response:
    names = store_of().services()
    return envelope(names, total=len(names))


@api_v1.get("/services/<path:service>/operations")  # a service name may hold a `/` (team%2Fapi)
def service_operations(service: str) -> Response:
    names = sorted({name for name, _ in store_of().operations(service)})
    return envelope(names, total=len(names))


@api_v1.get("/operations")
def operations() -> Response:
    service = v1_required(request.args, "service")
    kind = request.args.get("spanKind", "")
    found = [{"name": n, "spanKind": k} for n, k in store_of().operations(service) if not kind or k == kind]
    return envelope(found, total=len(found))


@api_v1.get("/traces")
def traces() -> Response:
    query = v1_trace_query(request.args)
    store = store_of()
    if not query.trace_ids:
        return streamed_envelope(store.find_lazily(query))
    # As Jaeger: the traces found, and a 404 entry in `errors` for each id it does not hold
    found = {trace["traceID"]: trace for trace in store.find_lazily(query)}
    missing = [tid for tid in dict.fromkeys(query.trace_ids) if tid not in found]
    errors = [{"code": 404, "msg": "trace not found", "traceID": tid} for tid in missing]
    return envelope(list(found.values()), total=len(found), errors=errors or None)


@api_v1.get("/traces/<trace_id_text>")
def trace(trace_id_text: str) -> Response:
    found = store_of().get(trace_id(trace_id_text))
    if found is None:
        return error(404, f"trace not found: {trace_id_text}")
    return envelope([found])


METRICS = {  # what: (the MetricFamily's name, its help, as Jaeger's Prometheus reader says them)
    "latencies": ("latencies", "{q}th quantile latency, grouped by service"),
    "calls": ("call_rate", "calls/sec, grouped by service"),
    "errors": ("error_rate", "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service"),
}


@api_v1.get("/metrics/<what>")
def metrics(what: str) -> Response:
    """Jaeger's metrics API (its Monitor tab): a MetricFamily of the span metrics the store counts at ingest."""
    if what not in METRICS:
        return error(404, f"no such metric: {what!r} (latencies, calls or errors)")
    query = metrics_query(request.args, latencies=what == "latencies")
    name, help_text = METRICS[what]
    grouped = query.group_by_operation
    stamp = functools.cache(rfc3339)  # every series has the same times: each is written once
    family = {
        "name": ("service_operation_" if grouped else "service_") + name,
        "type": "GAUGE",
        "help": help_text.format(q=f"{query.quantile or 0:.2f}") + (" & operation" if grouped else ""),
        "metrics": [
            {
                "labels": [{"name": label, "value": value} for label, value in labels],
                "metricPoints": [{"gaugeValue": {"doubleValue": v}, "timestamp": stamp(ms)} for ms, v in points],
            }
            for labels, points in series_points(store_of().metrics, query, what)
        ],
    }
    return jsonify(family)


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def rfc3339(ms: int) -> str:
    """A point's time as Jaeger writes it (a protobuf Timestamp in JSON): `2021-09-10T11:03:43.806Z`, the
    milliseconds only when there are some."""
    t = EPOCH + timedelta(milliseconds=ms)
    fraction = f".{ms % 1000:03d}" if ms % 1000 else ""
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}{fraction}Z"


@api_v1.get("/dependencies")
def dependencies() -> Response:
    end_ms = whole_number(request.args, "endTs")
    lookback_ms = whole_number(request.args, "lookback")
    end_us = end_ms * 1000 if end_ms is not None else None
    lookback_us = lookback_ms * 1000 if lookback_ms is not None else None
    return envelope(store_of().dependencies(end_us, lookback_us))


@api_v1.post("/transform")
def transform() -> Response:
    """What Jaeger's query service does with Jaeger UI's "Upload" of an OTLP JSON file: the traces in it, in the
    model, by trace (a 400 for a body that is not OTLP JSON). Like Jaeger, it keeps none of them."""
    export, _ = read_export(read_body(request.stream, request.headers.get("Content-Encoding", "").lower()), JSON)
    records, _ = spans_from_export(export)
    by_trace: dict[str, list[SpanRecord]] = {}
    for record in records:
        by_trace.setdefault(record[0]["traceID"], []).append(record)
    return envelope([assemble_trace(tid, spans) for tid, spans in by_trace.items()])


@api_v1.get("/stats")
def statistics() -> Response:
    """Not in Jaeger: what the store received, stored and dropped."""
    return jsonify(stats_of())
