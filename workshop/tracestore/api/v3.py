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

from flask import Blueprint, Response, jsonify, request

from workshop.tracestore.api import store_of
from workshop.tracestore.model import FOLLOWS_FROM, Json, TraceTree, is_error
from workshop.tracestore.query import BadQuery, trace_id, v3_trace_query

KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS_TAGS = {
    "span.kind",
    "error",
    "otel.status_code",
    "otel.status_description",
    "otel.scope.name",
    "otel.scope.version",
    "w3c.tracestate",
}

api_v3 = Blueprint("api_v3", __name__, url_prefix="/api/v3")


@api_v3.errorhandler(BadQuery)
def bad_query(problem: BadQuery) -> Response:
    grpc = {400: 3, 404: 5}.get(problem.status, 2)  # INVALID_ARGUMENT, NOT_FOUND, UNKNOWN
    response = jsonify({"error": {"grpcCode": grpc, "httpCode": problem.status, "message": str(problem)}})
    response.status_code = problem.status
    return response


@api_v3.get("/services")
def services() -> Response:
    return jsonify({"services": store_of().services()})


@api_v3.get("/operations")
def operations() -> Response:
    service = request.args.get("service")
    if not service:
        raise BadQuery("parameter 'service' is required")
    kind = request.args.get("spanKind", "")
    found = [{"name": n, "spanKind": k} for n, k in store_of().operations(service) if not kind or k == kind]
    return jsonify({"operations": found})


@api_v3.get("/traces/<trace_id_text>")
def trace(trace_id_text: str) -> Response:
    found = store_of().get(trace_id(trace_id_text))
    if found is None:
        raise BadQuery(f"trace not found: {trace_id_text}", 404)
    return jsonify({"result": to_otlp([found])})


@api_v3.get("/traces")
def traces() -> Response:
    return jsonify({"result": to_otlp(list(store_of().find_lazily(v3_trace_query(request.args))))})


@api_v3.get("/trace-summaries")
def trace_summaries() -> Response:
    """What Jaeger UI v2.19+ searches with: a summary per trace, not the trace itself."""
    found = store_of().find_lazily(v3_trace_query(request.args))
    return jsonify({"summaries": [summary(trace) for trace in found]})


def summary(trace: Json) -> Json:
    """Jaeger's TraceSummary: 32-hex id, root, nanosecond bounds as decimal strings, counts per service."""
    tree = TraceTree(trace)
    root = tree.root
    services: dict[str, Json] = {}
    for node in tree.spans:
        entry = services.setdefault(node.service, {"name": node.service, "spanCount": 0, "errorSpanCount": 0})
        entry["spanCount"] += 1
        entry["errorSpanCount"] += node.error
    return {
        "traceId": tree.trace_id.rjust(32, "0"),
        "rootServiceName": root.service if root else "?",
        "rootOperationName": root.operation if root else "?",
        "minStartTimeUnixNano": str(tree.start * 1000),
        "maxEndTimeUnixNano": str(tree.end * 1000),
        "spanCount": len(tree.spans),
        "errorSpanCount": len(tree.errors),
        "orphanSpanCount": len(tree.orphans),  # a parent named but never received
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
            resource_attributes = [_attribute("service.name", "string", process["serviceName"])]
            resource_attributes += [_attribute(t["key"], t["type"], t["value"]) for t in process["tags"]]
            scope_spans = [
                {"scope": {"name": name, "version": version}, "spans": found}
                for (name, version), found in scopes.items()
            ]
            resource_spans.append({"resource": {"attributes": resource_attributes}, "scopeSpans": scope_spans})
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
            if r["refType"] == FOLLOWS_FROM
        ],
        "status": _status(span, tags),
    }
    if parent:
        out["parentSpanId"] = parent
    if "w3c.tracestate" in tags:
        out["traceState"] = tags["w3c.tracestate"]["value"]
    return out


def _status(span: Json, tags: dict[str, Json]) -> Json:
    code = str(tags.get("otel.status_code", {}).get("value", ""))
    if code == "ERROR" or is_error(span):
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
