"""Zipkin v2 JSON (`POST /api/v2/spans` on 9411, as Jaeger v2 receives it) into a TraceStore.

Mapped as Jaeger does: localEndpoint.serviceName -> the process's service; remoteEndpoint -> tags
peer.service, net.peer.ip, net.peer.port; kind -> span.kind; tags -> string tags (the `error` tag ->
error=true); annotations -> logs. Zipkin's `shared` and `debug` have no place in Jaeger's model. A server
span that reuses its client's span id (`shared`, as py_zipkin sends it) gets an id of its own and becomes
that client span's child, as Jaeger's query shows it. The JSON is read with the standard library: Zipkin's
v2 format is plain JSON, and there is no Zipkin package for Python that decodes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from flask import Flask, Response, request

from workshop.tracestore import model
from workshop.tracestore.model import CHILD_OF, Json, SpanRecord, normalize_trace_id
from workshop.tracestore.receivers.http_body import BadRequest, Counted, read_body
from workshop.tracestore.store import TraceStore

KINDS = {"CLIENT": "client", "SERVER": "server", "PRODUCER": "producer", "CONSUMER": "consumer"}


@dataclass
class ZipkinStats(Counted):
    requests: int = 0
    spans: int = 0
    rejected_spans: int = 0  # in a request, but without a valid trace id, id or name
    bad_requests: int = 0


def spans_from_zipkin(document: object) -> tuple[list[SpanRecord], int]:
    """(Jaeger span, its process) for each Zipkin v2 span; and how many could not be read."""
    if not isinstance(document, list):
        raise BadRequest("Zipkin v2 JSON is a list of spans")
    client_ids = {span.get("id") for span in document if isinstance(span, dict) and span.get("kind") == "CLIENT"}
    records, rejected = [], 0
    for span in document:
        try:
            records.append(_record(span, client_ids))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):  # int(Infinity): OverflowError
            rejected += 1
    return records, rejected


def _hex_id(value: object, size: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= size or int(value, 16) == 0:
        raise ValueError(f"not a {size * 4}-bit id: {value!r}")
    return f"{int(value, 16):0{size}x}"


def _record(span: dict, client_ids: set) -> SpanRecord:
    trace_id = normalize_trace_id(span["traceId"])
    span_id = _hex_id(span["id"], 16)
    parent = _hex_id(span["parentId"], 16) if span.get("parentId") else None
    kind = KINDS.get(str(span.get("kind", "")).upper())
    if kind == "server" and (span.get("shared") or span["id"] in client_ids):  # the server half of a client's id
        parent, span_id = span_id, hashlib.sha256(f"{span_id}:server".encode()).hexdigest()[:16]
    local = span.get("localEndpoint") or {}
    tags: list[Json] = []
    for key, value in (span.get("tags") or {}).items():
        if key == "error":
            tags.append(model.tag("error", "bool", True))
            if value not in ("", "true"):
                tags.append(model.string_tag("error.message", value))
        else:
            tags.append(model.string_tag(str(key), value))
    if kind:
        tags.append(model.tag("span.kind", "string", kind))
    remote = span.get("remoteEndpoint") or {}
    if remote.get("serviceName"):
        tags.append(model.string_tag("peer.service", remote["serviceName"]))
    if remote.get("ipv4") or remote.get("ipv6"):
        tags.append(model.string_tag("net.peer.ip", remote.get("ipv4") or remote["ipv6"]))
    if isinstance(remote.get("port"), int):
        tags.append(model.tag("net.peer.port", "int64", remote["port"]))
    logs = [
        model.log_entry(int(note["timestamp"]), [model.string_tag("event", note["value"])])
        for note in span.get("annotations") or []
    ]
    references = [model.reference(CHILD_OF, trace_id, parent)] if parent else []
    jaeger_span = model.span(
        trace_id,
        span_id,
        str(span.get("name") or ""),
        references,
        int(span.get("timestamp") or 0),
        int(span.get("duration") or 0),
        tags,
        logs,
        flags=1,
    )
    tags_of_process = [model.string_tag("ip", local["ipv4"])] if local.get("ipv4") else []
    return jaeger_span, model.process(str(local.get("serviceName") or "unknown-service"), tags_of_process)


def create_app(store: TraceStore, stats: ZipkinStats) -> Flask:
    app = Flask("zipkin_receiver", static_folder=None)

    @app.post("/api/v2/spans")
    def spans() -> Response:
        stats.count(requests=1)
        try:
            if (request.mimetype or "").lower() != "application/json":
                raise BadRequest("Zipkin v2 spans are application/json here", 415)
            body = read_body(request.stream, request.headers.get("Content-Encoding", "").lower())
            try:
                document = json.loads(body)
            except (ValueError, RecursionError) as error:
                raise BadRequest(f"not JSON: {str(error)[:200]}") from None
            records, rejected = spans_from_zipkin(document)
        except BadRequest as problem:
            stats.count(bad_requests=1)
            return Response(json.dumps({"message": str(problem)}) + "\n", problem.status, mimetype="application/json")
        stats.count(spans=store.add_spans(records) if records else 0, rejected_spans=rejected)
        return Response(status=202)  # as Zipkin answers

    @app.errorhandler(404)
    @app.errorhandler(405)
    def elsewhere(problem) -> Response:
        text = f"the Zipkin receiver takes POST /api/v2/spans ({problem.code})\n"
        return Response(text, problem.code, mimetype="text/plain")

    return app
