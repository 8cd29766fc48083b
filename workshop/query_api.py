"""Jaeger's query HTTP API over a TraceStore, in Jaeger's JSON shapes, so Jaeger's tools can read it.

GET /api/services
GET /api/services/{service}/operations
GET /api/operations?service=...&spanKind=...
GET /api/traces?service=&operation=&tags={"k":"v"}&minDuration=&maxDuration=&start=&end=&lookback=&limit=
GET /api/traces/{traceID}
GET /api/dependencies?endTs=&lookback=
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request

from workshop.durations import parse_duration_us
from workshop.jaeger_model import normalize_trace_id
from workshop.trace_store import TraceQuery, TraceStore

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


class BadParameter(ValueError):
    pass


def envelope(data: Any, total: int = 0, status: int = 200, errors: list | None = None) -> Response:
    response = jsonify({"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors})
    response.status_code = status
    return response


def error(status: int, message: str) -> Response:
    return envelope(None, status=status, errors=[{"code": status, "msg": message}])


def create_app(store: TraceStore, stats: Callable[[], dict] | None = None) -> Flask:
    app = Flask("trace_store")
    app.json.sort_keys = False  # keep Jaeger's field order: traceID, spans, processes, warnings

    @app.errorhandler(BadParameter)
    def bad_parameter(problem: BadParameter) -> Response:
        return error(400, str(problem))

    @app.errorhandler(404)
    def not_found(_: Exception) -> Response:
        return error(404, f"no such route: {request.path}")

    @app.errorhandler(405)
    def not_allowed(_: Exception) -> Response:
        return error(405, f"{request.method} is not supported on {request.path}")

    @app.get("/")
    def index() -> Response:
        return jsonify(
            {
                "trace_store": "the workshop's Jaeger-compatible trace store",
                "api": ["/api/services", "/api/traces?service=<service>", "/api/traces/<traceID>"],
                "traces": store.trace_count(),
            }
        )

    @app.get("/api/services")
    def services() -> Response:
        names = store.services()
        return envelope(names, total=len(names))

    @app.get("/api/services/<service>/operations")
    def service_operations(service: str) -> Response:
        names = sorted({name for name, _ in store.operations(service)})
        return envelope(names, total=len(names))

    @app.get("/api/operations")
    def operations() -> Response:
        service = request.args.get("service")
        if not service:
            raise BadParameter("parameter 'service' is required")
        kind = request.args.get("spanKind", "")
        found = [{"name": n, "spanKind": k} for n, k in store.operations(service) if not kind or k == kind]
        return envelope(found, total=len(found))

    @app.get("/api/traces")
    def traces() -> Response:
        return envelope(store.find(parse_trace_query(request.args)))

    @app.get("/api/traces/<trace_id>")
    def trace(trace_id: str) -> Response:
        try:
            normalized = normalize_trace_id(trace_id)
        except ValueError as problem:
            raise BadParameter(str(problem)) from None
        found = store.get(normalized)
        if found is None:
            return error(404, f"trace not found: {trace_id}")
        return envelope([found])

    @app.get("/api/dependencies")
    def dependencies() -> Response:
        end_ms = _int(request.args, "endTs")
        lookback_ms = _int(request.args, "lookback")
        end_us = end_ms * 1000 if end_ms is not None else None
        lookback_us = lookback_ms * 1000 if lookback_ms is not None else None
        return envelope(store.dependencies(end_us, lookback_us))

    @app.get("/api/stats")
    def statistics() -> Response:
        """Not in Jaeger: what the store received, stored and dropped."""
        return jsonify(stats() if stats else {})

    return app


def parse_trace_query(args) -> TraceQuery:
    trace_ids = []
    for value in args.getlist("traceID"):
        try:
            trace_ids.append(normalize_trace_id(value))
        except ValueError as problem:
            raise BadParameter(str(problem)) from None
    service = args.get("service") or None
    if service is None and not trace_ids:
        raise BadParameter("parameter 'service' is required")
    limit = _int(args, "limit")
    if limit is None or limit == 0:
        limit = DEFAULT_LIMIT
    if not 0 < limit <= MAX_LIMIT:
        raise BadParameter(f"parameter 'limit' must be between 1 and {MAX_LIMIT}")
    query = TraceQuery(
        service=service,
        operation=args.get("operation") or None,
        tags=_tags(args),
        min_duration_us=_duration(args, "minDuration"),
        max_duration_us=_duration(args, "maxDuration"),
        start_us=_int(args, "start"),
        end_us=_int(args, "end"),
        limit=limit,
        trace_ids=trace_ids,
    )
    lookback = args.get("lookback")
    if query.start_us is None and lookback and lookback != "custom":
        query.start_us = (query.end_us or int(time.time() * 1_000_000)) - _duration(args, "lookback")
    low, high = query.min_duration_us, query.max_duration_us
    if low is not None and high is not None and low > high:
        raise BadParameter("'maxDuration' must be greater than or equal to 'minDuration'")
    return query


def _int(args, name: str) -> int | None:
    value = args.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise BadParameter(f"parameter {name!r} must be a whole number, not {value!r}") from None


def _duration(args, name: str) -> int | None:
    value = args.get(name)
    if value in (None, ""):
        return None
    try:
        return parse_duration_us(value)
    except ValueError as problem:
        raise BadParameter(f"parameter {name!r}: {problem}") from None


def _tags(args) -> dict[str, str]:
    """Jaeger accepts `tags={"k":"v"}` (JSON) and repeated `tag=k:v`."""
    tags: dict[str, str] = {}
    for raw in args.getlist("tags"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise BadParameter(f'parameter \'tags\' must be a JSON map like {{"error":"true"}}, not {raw!r}') from None
        if not isinstance(parsed, dict):
            raise BadParameter('parameter \'tags\' must be a JSON map like {"error":"true"}')
        tags.update({str(k): _text(v) for k, v in parsed.items()})
    for raw in args.getlist("tag"):
        key, separator, value = raw.partition(":")
        if not separator or not key:
            raise BadParameter(f"parameter 'tag' must be key:value, not {raw!r}")
        tags[key] = value
    return tags


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
