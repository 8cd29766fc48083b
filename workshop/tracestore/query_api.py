"""Jaeger's query HTTP API over a TraceStore, in Jaeger's JSON shapes, so Jaeger's tools can read it.

GET /api/services
GET /api/services/{service}/operations
GET /api/operations?service=...&spanKind=...
GET /api/traces?service=&operation=&tags={"k":"v"}&minDuration=&maxDuration=&start=&end=&lookback=&limit=
GET /api/traces/{traceID}
GET /api/dependencies?endTs=&lookback=
GET /api/metrics/*  (501: no metrics backend, as Jaeger without one)
Any of them with ?prettyPrint=true: indented JSON.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import InternalServerError

from workshop.tracestore.durations import parse_duration_us, quoted
from workshop.tracestore.jaeger_model import normalize_trace_id, tag_text
from workshop.tracestore.store import TraceQuery, TraceStore

log = logging.getLogger("workshop.tracestore.query_api")
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
INT64 = (-(2**63), 2**63 - 1)  # Jaeger reads its whole-number parameters as int64


class BadParameter(ValueError):
    pass


class StrictJSON(DefaultJSONProvider):
    """JSON as strict parsers read it: NaN or Infinity would be an error here, never in an answer.
    (The model never holds them: jaeger_model turns such float tags into strings.)"""

    sort_keys = False  # keep Jaeger's field order: traceID, spans, processes, warnings

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)


def envelope(data: Any, total: int = 0, status: int = 200, errors: list | None = None) -> Response:
    response = jsonify({"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors})
    response.status_code = status
    return response


def streamed_envelope(app: Flask, items: Iterable[Any]) -> Response:
    """`envelope(list(items))`, byte for byte, written item by item: a large answer is never whole in memory."""

    def chunks() -> Iterator[str]:
        yield '{"data":['
        for n, item in enumerate(items):
            yield ("," if n else "") + app.json.dumps(item, separators=(",", ":"))
        yield '],"total":0,"limit":0,"offset":0,"errors":null}\n'

    return Response(chunks(), mimetype="application/json")


def error(status: int, message: str) -> Response:
    return envelope(None, status=status, errors=[{"code": status, "msg": message}])


def create_app(store: TraceStore, stats: Callable[[], dict] | None = None) -> Flask:
    app = Flask("trace_store", static_folder=None)  # the viewer serves its own, under /static
    app.json = StrictJSON(app)

    @app.errorhandler(BadParameter)
    def bad_parameter(problem: BadParameter) -> Response:
        return error(400, str(problem))

    @app.errorhandler(404)
    def not_found(_: Exception) -> Response:
        return error(404, f"no such route: {request.path}")

    @app.errorhandler(405)
    def not_allowed(_: Exception) -> Response:
        return error(405, f"{request.method} is not supported on {request.path}")

    @app.errorhandler(InternalServerError)
    def internal_error(problem: InternalServerError) -> Response:
        """A bug, not bad input (that is a 400): logged, and answered in Jaeger's shape rather than HTML."""
        cause = problem.original_exception or problem
        log.error("%s %s failed", request.method, request.full_path, exc_info=cause)
        return error(500, f"internal error: {type(cause).__name__} (the store's log has the details)")

    from workshop.tracestore.web.pages import blueprint  # the trace viewer, at Jaeger UI's paths

    app.register_blueprint(blueprint(store, stats))
    from workshop.tracestore import api_v3  # it reads parameters as this module does

    app.register_blueprint(api_v3.blueprint(store))  # Jaeger's API v3, OTLP JSON inside {"result": ...}

    @app.get("/api/services")
    def services() -> Response:
        names = store.services()
        return envelope(names, total=len(names))

    @app.get("/api/services/<path:service>/operations")  # a service name may hold a `/` (team%2Fapi)
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
        query = parse_trace_query(request.args)
        if not query.trace_ids:
            return streamed_envelope(app, store.find_lazily(query))
        # As Jaeger: the traces found, and a 404 entry in `errors` for each id it does not hold
        found = {trace["traceID"]: trace for trace in store.find_lazily(query)}
        missing = [tid for tid in dict.fromkeys(query.trace_ids) if tid not in found]
        errors = [{"code": 404, "msg": "trace not found", "traceID": tid} for tid in missing]
        return envelope(list(found.values()), total=len(found), errors=errors or None)

    @app.get("/api/metrics/<path:_>")
    def metrics(_: str) -> Response:
        """Jaeger's Monitor tab asks here; without a metrics backend Jaeger answers this, and so do we."""
        return error(501, "metrics querying is currently disabled")

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

    @app.after_request
    def pretty_print(response: Response) -> Response:
        """`?prettyPrint=true`, as Jaeger: the JSON indented, for people who read it with curl."""
        if request.args.get("prettyPrint") == "true" and response.mimetype == "application/json":
            body = json.loads(response.get_data())
            response.direct_passthrough = False
            response.set_data(json.dumps(body, indent=2, allow_nan=False) + "\n")
        return response

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
        number = int(value)
    except ValueError:
        raise BadParameter(f"parameter {name!r} must be a whole number, not {quoted(value)}") from None
    if not INT64[0] <= number <= INT64[1]:
        raise BadParameter(f"parameter {name!r} is out of range (a 64-bit whole number): {quoted(value)}")
    return number


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
        tags.update(tag_map(raw))
    for raw in args.getlist("tag"):
        key, separator, value = raw.partition(":")
        if not separator or not key:
            raise BadParameter(f"parameter 'tag' must be key:value, not {quoted(raw)}")
        tags[key] = value
    return tags


def tag_map(raw: str) -> dict[str, str]:
    """`{"error":"true","http.status_code":500}`: a JSON map of tag values (strings, numbers or booleans)."""
    shape = 'parameter \'tags\' must be a JSON map like {"error":"true"}'
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise BadParameter(f"{shape}, not {quoted(raw)}") from None
    except RecursionError:
        raise BadParameter(f"{shape}, not JSON nested this deep: {quoted(raw)}") from None
    if not isinstance(parsed, dict):
        raise BadParameter(shape)
    for key, value in parsed.items():
        if value is None or isinstance(value, (dict, list)):
            raise BadParameter(f"{shape}: the value of {quoted(key)} is not a string, number or boolean")
    return {key: tag_text(value) for key, value in parsed.items()}
