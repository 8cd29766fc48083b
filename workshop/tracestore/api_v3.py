"""Jaeger's API v3 (what Jaeger v2 serves and its newest clients call), over the same store:

GET /api/v3/services                                   {"services": [...]}
GET /api/v3/operations?service=&spanKind=              {"operations": [{"name", "spanKind"}]}
GET /api/v3/traces/{traceID}                           {"result": <OTLP JSON>}
GET /api/v3/traces?query.service_name=&query.operation_name=&query.start_time_min=&query.start_time_max=
    &query.duration_min=&query.duration_max=&query.num_traces=&query.attributes=   (also query.serviceName, ...)
GET /api/v3/trace-summaries?(the same query; query.span_name too)   {"summaries": [...]}: Jaeger UI v2.19+

Traces come back as OTLP JSON (ids in hex, as the OTLP spec writes them), made from Jaeger's model by
undoing what the receivers' mapping did: process -> resource, otel.scope.* -> scope, span.kind -> kind,
error / otel.status_* -> status, logs -> events, CHILD_OF -> parent, FOLLOWS_FROM -> links. Errors are
answered as Jaeger's v3 gateway does: {"error": {"httpCode", "grpcCode", "message"}}.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask import Blueprint, Response, jsonify, request

from workshop.tracestore.durations import parse_duration_us
from workshop.tracestore.jaeger_model import Json, normalize_trace_id
from workshop.tracestore.query_api import BadParameter, tag_map
from workshop.tracestore.store import TraceQuery, TraceStore

KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS_TAGS = {"span.kind", "error", "otel.status_code", "otel.status_description", "otel.scope.name",
               "otel.scope.version", "w3c.tracestate"}  # fmt: skip
MAX_TRACES = 1000


class V3Error(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def blueprint(store: TraceStore) -> Blueprint:
    v3 = Blueprint("api_v3", __name__, url_prefix="/api/v3")

    @v3.errorhandler(V3Error)
    def problem(error: V3Error) -> Response:
        grpc = {400: 3, 404: 5}.get(error.status, 2)  # INVALID_ARGUMENT, NOT_FOUND, UNKNOWN
        response = jsonify({"error": {"grpcCode": grpc, "httpCode": error.status, "message": str(error)}})
        response.status_code = error.status
        return response

    @v3.get("/services")
    def services() -> Response:
        return jsonify({"services": store.services()})

    @v3.get("/operations")
    def operations() -> Response:
        service = request.args.get("service")
        if not service:
            raise V3Error("parameter 'service' is required")
        kind = request.args.get("spanKind", "")
        found = [{"name": n, "spanKind": k} for n, k in store.operations(service) if not kind or k == kind]
        return jsonify({"operations": found})

    @v3.get("/traces/<trace_id>")
    def trace(trace_id: str) -> Response:
        try:
            found = store.get(normalize_trace_id(trace_id))
        except ValueError as error:
            raise V3Error(str(error)) from None
        if found is None:
            raise V3Error(f"trace not found: {trace_id}", 404)
        return jsonify({"result": to_otlp([found])})

    @v3.get("/traces")
    def traces() -> Response:
        return jsonify({"result": to_otlp(list(store.find_lazily(trace_query(request.args))))})

    @v3.get("/trace-summaries")
    def trace_summaries() -> Response:
        """What Jaeger UI v2.19+ searches with: a summary per trace, not the trace itself."""
        return jsonify({"summaries": [summary(trace) for trace in store.find_lazily(trace_query(request.args))]})

    return v3


def _arg(args, name: str) -> str:
    """`query.service_name` or its gateway spelling `query.serviceName`."""
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)
    return args.get(f"query.{name}") or args.get(f"query.{camel}") or ""


def trace_query(args) -> TraceQuery:
    service = _arg(args, "service_name")
    if not service:
        raise V3Error("query.service_name is required")
    limit = _arg(args, "num_traces") or _arg(args, "search_depth") or "20"
    if not limit.isdigit() or not 0 < int(limit) <= MAX_TRACES:
        raise V3Error(f"query.num_traces must be a whole number from 1 to {MAX_TRACES}")
    tags: dict[str, str] = {}
    if _arg(args, "attributes"):
        try:
            tags = tag_map(_arg(args, "attributes"))
        except BadParameter as error:
            raise V3Error(str(error).replace("parameter 'tags'", "query.attributes")) from None
    return TraceQuery(
        service=service,
        operation=_arg(args, "operation_name") or _arg(args, "span_name") or None,
        tags=tags,
        start_us=_time(args, "start_time_min"),
        end_us=_time(args, "start_time_max"),
        min_duration_us=_duration(args, "duration_min"),
        max_duration_us=_duration(args, "duration_max"),
        limit=int(limit),
    )


def _time(args, name: str) -> int | None:
    value = _arg(args, name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise V3Error(f"query.{name} is an RFC 3339 time like 2026-11-21T10:00:00Z, not {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise V3Error(f"query.{name} needs its time zone (Z, or +01:00)")
    return int(moment.timestamp() * 1_000_000)


def _duration(args, name: str) -> int | None:
    value = _arg(args, name)
    if not value:
        return None
    try:
        return parse_duration_us(value)
    except ValueError as error:
        raise V3Error(f"query.{name}: {error}") from None


def summary(trace: Json) -> Json:
    """Jaeger's TraceSummary: 32-hex id, root, nanosecond bounds as decimal strings, counts per service."""
    spans = trace["spans"]
    ids = {span["spanID"] for span in spans}
    service_of = {
        span["spanID"]: trace["processes"].get(span["processID"], {}).get("serviceName", "?") for span in spans
    }
    roots = [span for span in spans if not any(r["spanID"] in ids for r in span["references"])]
    root = min(roots or spans, key=lambda span: span["startTime"])
    orphans = sum(1 for span in roots if span["references"])  # a parent named but never received
    errors = {span["spanID"] for span in spans if any(t["key"] == "error" and t["value"] in (True, "true")
                                                      for t in span["tags"])}  # fmt: skip
    services: dict[str, Json] = {}
    for span in spans:
        entry = services.setdefault(service_of[span["spanID"]], {"name": service_of[span["spanID"]], "spanCount": 0,
                                                                  "errorSpanCount": 0})  # fmt: skip
        entry["spanCount"] += 1
        entry["errorSpanCount"] += span["spanID"] in errors
    return {
        "traceId": trace["traceID"].rjust(32, "0"),
        "rootServiceName": service_of[root["spanID"]],
        "rootOperationName": root["operationName"],
        "minStartTimeUnixNano": str(min(span["startTime"] for span in spans) * 1000),
        "maxEndTimeUnixNano": str(max(span["startTime"] + span["duration"] for span in spans) * 1000),
        "spanCount": len(spans),
        "errorSpanCount": len(errors),
        "orphanSpanCount": orphans,
        "services": sorted(services.values(), key=lambda entry: entry["name"]),
    }


# --- Jaeger's model -> OTLP JSON -----------------------------------------------------------------------------


def to_otlp(traces: list[Json]) -> Json:
    """`{"resourceSpans": [...]}`: one resource per process of each trace, one scope per instrumentation."""
    resource_spans = []
    for trace in traces:
        by_process: dict[str, list[Json]] = {}
        for span in trace["spans"]:
            by_process.setdefault(span["processID"], []).append(span)
        for process_id, spans in by_process.items():
            process = trace["processes"].get(process_id, {"serviceName": "?", "tags": []})
            scopes: dict[tuple[str, str], list[Json]] = {}
            for span in spans:
                tags = {t["key"]: t["value"] for t in span["tags"]}
                key = (str(tags.get("otel.scope.name", "")), str(tags.get("otel.scope.version", "")))
                scopes.setdefault(key, []).append(_span(span))
            resource_spans.append({
                "resource": {"attributes": [_attribute("service.name", "string", process["serviceName"])]
                             + [_attribute(t["key"], t["type"], t["value"]) for t in process["tags"]]},
                "scopeSpans": [{"scope": {"name": name, "version": version}, "spans": found}
                               for (name, version), found in scopes.items()],
            })  # fmt: skip
    return {"resourceSpans": resource_spans}


def _span(span: Json) -> Json:
    tags = {t["key"]: t for t in span["tags"]}
    refs = span["references"]
    parent = next((r["spanID"] for r in refs if r["refType"] == "CHILD_OF"), "")
    out: Json = {
        "traceId": span["traceID"].rjust(32, "0"),
        "spanId": span["spanID"],
        "name": span["operationName"],
        "kind": KINDS.get(str(tags.get("span.kind", {}).get("value", "")), 0),
        "startTimeUnixNano": str(span["startTime"] * 1000),
        "endTimeUnixNano": str((span["startTime"] + span["duration"]) * 1000),
        "attributes": [
            _attribute(t["key"], t["type"], t["value"]) for t in span["tags"] if t["key"] not in STATUS_TAGS
        ],
        "events": [_event(log) for log in span["logs"]],
        "links": [
            {"traceId": r["traceID"].rjust(32, "0"), "spanId": r["spanID"]}
            for r in refs
            if r["refType"] == "FOLLOWS_FROM"
        ],  # fmt: skip
        "status": _status(tags),
    }
    if parent:
        out["parentSpanId"] = parent
    if "w3c.tracestate" in tags:
        out["traceState"] = tags["w3c.tracestate"]["value"]
    return out


def _status(tags: dict[str, Json]) -> Json:
    code = str(tags.get("otel.status_code", {}).get("value", ""))
    if code == "ERROR" or tags.get("error", {}).get("value") in (True, "true"):
        status: Json = {"code": 2}
        if "otel.status_description" in tags:
            status["message"] = str(tags["otel.status_description"]["value"])
        return status
    return {"code": 1} if code == "OK" else {}


def _event(log: Json) -> Json:
    fields = log["fields"]
    name = next((str(f["value"]) for f in fields if f["key"] == "event"), "log")
    return {
        "timeUnixNano": str(log["timestamp"] * 1000),
        "name": name,
        "attributes": [_attribute(f["key"], f["type"], f["value"]) for f in fields if f["key"] != "event"],
    }


def _attribute(key: str, kind: str, value: object) -> Json:
    if kind == "bool":
        typed: Json = {"boolValue": bool(value)}
    elif kind == "int64":
        typed = {"intValue": str(value)}  # OTLP JSON writes 64-bit integers as strings
    elif kind == "float64":
        typed = {"doubleValue": value}
    elif kind == "binary":
        typed = {"bytesValue": value}
    else:
        typed = {"stringValue": str(value)}
    return {"key": key, "value": typed}
