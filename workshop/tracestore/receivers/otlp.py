"""OTLP over HTTP (`POST /v1/traces` on 4318, as Jaeger v2 receives it) into a TraceStore.

Bodies are OTLP protobuf (`application/x-protobuf`, decoded with the `opentelemetry-proto` package's
ExportTraceServiceRequest) or OTLP JSON (`application/json`: protobuf's JSON mapping, except that OTLP
writes trace and span ids as hex where protobuf expects base64), plain or gzip-compressed, with a
Content-Length or chunked. Spans become Jaeger's model the way Jaeger's own translator does it:

  resource service.name -> the process's service; other resource attributes -> process tags
  scope name/version    -> tags otel.scope.name / otel.scope.version
  attributes            -> typed tags (arrays and maps as JSON text)
  kind                  -> tag span.kind (none when unspecified)
  status ERROR          -> error=true, otel.status_code=ERROR (+ otel.status_description)
  events                -> logs: event=<name> and the event's attributes
  parent / links        -> CHILD_OF / FOLLOWS_FROM references;  trace_state -> w3c.tracestate

A 128-bit trace id whose high half is zero is the 64-bit id jaeger-client would write: one trace.
"""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass, field

from flask import Flask, Response, request
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from workshop.tracestore import model
from workshop.tracestore.model import CHILD_OF, FOLLOWS_FROM, Json, SpanRecord, span_id_hex, trace_id_from_bytes
from workshop.tracestore.receivers.http_body import BadRequest, Counted, read_body
from workshop.tracestore.receivers.lenient_protobuf import parse_lenient
from workshop.tracestore.store import TraceStore

PROTOBUF, JSON = "application/x-protobuf", "application/json"
KINDS = {
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
    Span.SPAN_KIND_INTERNAL: "internal",
}
ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}  # OTLP JSON writes these as hex


@dataclass
class OtlpStats(Counted):
    requests: int = 0
    spans: int = 0
    rejected_spans: int = 0  # in an export, but not storable (no valid ids)
    bad_requests: int = 0  # answered 4xx
    not_utf8_strings: int = 0  # strings that were not UTF-8: stored with U+FFFD where the bad bytes were
    by_content_type: dict[str, int] = field(default_factory=dict)


def read_export(body: bytes, content_type: str) -> tuple[ExportTraceServiceRequest, int]:
    """The export in `body` (already decompressed), and how many of its strings were not UTF-8 (kept with
    U+FFFD, so that one client's bad byte costs no other span of the batch); or BadRequest."""
    if content_type == PROTOBUF:
        try:
            return ExportTraceServiceRequest.FromString(body), 0
        except (ProtobufDecodeError, RecursionError, ValueError) as error:
            problem = error
        try:  # most often a string that is not UTF-8, which protobuf refuses the whole message for
            return parse_lenient(ExportTraceServiceRequest, body)
        except (ProtobufDecodeError, RecursionError, ValueError):
            raise BadRequest(f"not an OTLP protobuf ExportTraceServiceRequest: {problem}") from None
    try:
        document = json.loads(body)
        if not isinstance(document, dict):
            raise BadRequest("OTLP JSON is an object with resourceSpans")
        parsed = json_format.ParseDict(
            _ids_as_base64(document), ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
        return parsed, 0
    except BadRequest:
        raise
    except (ValueError, RecursionError, json_format.ParseError) as error:
        raise BadRequest(f"not OTLP JSON: {str(error)[:200]}") from None


def _ids_as_base64(value: object) -> object:
    """OTLP JSON's hex ids as protobuf's JSON parser reads bytes (base64); ids already in base64 stay."""
    if isinstance(value, list):
        return [_ids_as_base64(item) for item in value]
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        size = ID_FIELDS.get(key)
        if size and isinstance(item, str) and len(item) == 2 * size:
            with contextlib.suppress(ValueError):  # not hex: perhaps base64 already; the parser says if not
                item = base64.b64encode(bytes.fromhex(item)).decode()
        converted[key] = _ids_as_base64(item)
    return converted


def spans_from_export(export: ExportTraceServiceRequest) -> tuple[list[SpanRecord], int]:
    """(Jaeger span, its process) for every span; and how many spans had to be rejected (invalid ids)."""
    records: list[SpanRecord] = []
    rejected = 0
    for resource_spans in export.resource_spans:
        attributes = list(resource_spans.resource.attributes)
        service = next((a.value.string_value for a in attributes if a.key == "service.name"), "") or "unknown_service"
        process = model.process(service, [_tag(a.key, a.value) for a in attributes if a.key != "service.name"])
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_tags = [model.tag("otel.scope.name", "string", scope.name)] if scope.name else []
            if scope.version:
                scope_tags.append(model.tag("otel.scope.version", "string", scope.version))
            for span in scope_spans.spans:
                if (
                    len(span.trace_id) != 16
                    or not any(span.trace_id)
                    or len(span.span_id) != 8
                    or not any(span.span_id)
                ):
                    rejected += 1
                    continue
                records.append((_span(span, scope_tags), process))
    return records, rejected


def _span(span: Span, scope_tags: list[Json]) -> Json:
    trace_id = trace_id_from_bytes(span.trace_id)
    references = []
    if len(span.parent_span_id) == 8 and any(span.parent_span_id):
        parent = span_id_hex(int.from_bytes(span.parent_span_id, "big"))
        references.append(model.reference(CHILD_OF, trace_id, parent))
    for link in span.links:
        if len(link.trace_id) == 16 and len(link.span_id) == 8:
            linked = span_id_hex(int.from_bytes(link.span_id, "big"))
            references.append(model.reference(FOLLOWS_FROM, trace_id_from_bytes(link.trace_id), linked))
    tags = [_tag(a.key, a.value) for a in span.attributes] + scope_tags
    if span.kind in KINDS:
        tags.append(model.tag("span.kind", "string", KINDS[span.kind]))
    if span.status.code == Status.STATUS_CODE_ERROR:
        tags += [model.tag("error", "bool", True), model.tag("otel.status_code", "string", "ERROR")]
        if span.status.message:
            tags.append(model.tag("otel.status_description", "string", span.status.message))
    elif span.status.code == Status.STATUS_CODE_OK:
        tags.append(model.tag("otel.status_code", "string", "OK"))
    if span.trace_state:
        tags.append(model.tag("w3c.tracestate", "string", span.trace_state))
    logs = [
        model.log_entry(
            event.time_unix_nano // 1000,
            [model.tag("event", "string", event.name)] + [_tag(a.key, a.value) for a in event.attributes],
        )
        for event in span.events
    ]
    start = span.start_time_unix_nano // 1000
    return model.span(
        trace_id,
        span_id_hex(int.from_bytes(span.span_id, "big")),
        span.name,
        references,
        start,
        max(span.end_time_unix_nano // 1000 - start, 0),
        tags,
        logs,
        flags=1,
    )


def _tag(key: str, value: AnyValue) -> Json:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return model.tag(key, "string", value.string_value)
    if kind == "bool_value":
        return model.tag(key, "bool", value.bool_value)
    if kind == "int_value":
        return model.tag(key, "int64", value.int_value)
    if kind == "double_value":  # NaN and infinities, which JSON has no form for, as strings: as Thrift's
        return model.float_tag(key, value.double_value)
    if kind == "bytes_value":
        return model.tag(key, "binary", base64.b64encode(value.bytes_value).decode())
    if kind in ("array_value", "kvlist_value"):  # as Jaeger: JSON text
        return model.tag(key, "string", json.dumps(_plain(value), separators=(",", ":")))
    return model.tag(key, "string", "")


def _plain(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _plain(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "double_value" and value.double_value != value.double_value:  # NaN has no JSON form
        return "NaN"
    return getattr(value, kind) if kind else None


def create_app(store: TraceStore, stats: OtlpStats) -> Flask:
    app = Flask("otlp_receiver", static_folder=None)

    @app.post("/v1/traces")
    def traces() -> Response:
        content_type = (request.mimetype or "").lower()
        stats.count(requests=1)
        stats.count_by("by_content_type", content_type or "none")
        try:
            if content_type not in (PROTOBUF, JSON):
                raise BadRequest(f"Content-Type {content_type!r}: OTLP/HTTP is {PROTOBUF} or {JSON}", 415)
            body = read_body(request.stream, request.headers.get("Content-Encoding", "").lower())
            export, not_utf8 = read_export(body, content_type)
        except BadRequest as problem:
            stats.count(bad_requests=1)
            return _answer(content_type, status=problem.status, message=str(problem))
        records, rejected = spans_from_export(export)
        stored = store.add_spans(records) if records else 0
        stats.count(spans=stored, rejected_spans=rejected, not_utf8_strings=not_utf8)
        return _answer(content_type, rejected=rejected)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def elsewhere(problem) -> Response:
        return Response(
            f"the OTLP receiver takes POST /v1/traces ({problem.code})\n", problem.code, mimetype="text/plain"
        )

    return app


def _answer(content_type: str, status: int = 200, message: str = "", rejected: int = 0) -> Response:
    """As the OTLP spec says: an ExportTraceServiceResponse (with partial success when spans were rejected),
    or for an error a Status-shaped message, in the request's own encoding."""
    if status != 200:  # google.rpc.Status's fields, as JSON (its protobuf class is not in opentelemetry-proto)
        body = json.dumps({"code": 3 if status == 400 else 0, "message": message})
        return Response(body + "\n", status, mimetype=JSON)
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = "spans without a valid trace id or span id were rejected"
    if content_type == PROTOBUF:
        return Response(response.SerializeToString(), 200, mimetype=PROTOBUF)
    return Response(json_format.MessageToJson(response, indent=None), 200, mimetype=JSON)
