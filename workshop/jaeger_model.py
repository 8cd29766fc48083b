"""Thrift spans -> Jaeger's UI JSON model, the shape Jaeger's query API serves and its UI uploads.

As Jaeger's `model/json` package declares it. Ids are unsigned hex (thrift carries signed 64-bit),
times are microseconds, tags and log fields are `{"key", "type", "value"}`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from jaeger_client.thrift_gen.jaeger.ttypes import Batch, SpanRefType, TagType

UINT64 = (1 << 64) - 1
JS_MAX_SAFE_INTEGER = (1 << 53) - 1  # larger int64 values travel as strings, as in Jaeger
REF_TYPES = {SpanRefType.CHILD_OF: "CHILD_OF", SpanRefType.FOLLOWS_FROM: "FOLLOWS_FROM"}

Json = dict[str, Any]


def trace_id_hex(high: int | None, low: int) -> str:
    high, low = (high or 0) & UINT64, low & UINT64
    return f"{high:016x}{low:016x}" if high else f"{low:016x}"


def span_id_hex(span_id: int) -> str:
    return f"{span_id & UINT64:016x}"


def normalize_trace_id(text: str) -> str:
    """Any spelling of a trace id (upper case, leading zeros, 32 digits) -> the form we store."""
    value = text.strip().lower()
    if not value or len(value) > 32 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"not a trace id: {text!r} (1 to 32 hex digits)")
    number = int(value, 16)
    return trace_id_hex(number >> 64, number & UINT64)


def key_value(tag) -> Json:
    if tag.vType == TagType.STRING:
        return {"key": tag.key, "type": "string", "value": tag.vStr or ""}
    if tag.vType == TagType.BOOL:
        return {"key": tag.key, "type": "bool", "value": bool(tag.vBool)}
    if tag.vType == TagType.LONG:
        value = tag.vLong or 0
        return {"key": tag.key, "type": "int64", "value": value if abs(value) <= JS_MAX_SAFE_INTEGER else str(value)}
    if tag.vType == TagType.DOUBLE:
        return {"key": tag.key, "type": "float64", "value": tag.vDouble or 0.0}
    if tag.vType == TagType.BINARY:
        return {"key": tag.key, "type": "binary", "value": base64.b64encode(tag.vBinary or b"").decode()}
    return {"key": tag.key, "type": "string", "value": f"<unknown tag type {tag.vType}>"}


def spans_from_batch(batch: Batch) -> list[tuple[Json, Json]]:
    """Each span of the batch as (Jaeger UI span without processID, its process)."""
    process = {
        "serviceName": batch.process.serviceName or "unknown-service",
        "tags": [key_value(tag) for tag in batch.process.tags or []],
    }
    return [(_span(span), process) for span in batch.spans]


def _span(span) -> Json:
    trace_id = trace_id_hex(span.traceIdHigh, span.traceIdLow)
    references = [
        {
            "refType": REF_TYPES.get(ref.refType, "CHILD_OF"),
            "traceID": trace_id_hex(ref.traceIdHigh, ref.traceIdLow),
            "spanID": span_id_hex(ref.spanId),
        }
        for ref in span.references or []
    ]
    parent = span.parentSpanId or 0
    if parent and not any(ref["spanID"] == span_id_hex(parent) for ref in references):
        references.insert(0, {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span_id_hex(parent)})
    result: Json = {
        "traceID": trace_id,
        "spanID": span_id_hex(span.spanId),
        **({"flags": span.flags} if span.flags else {}),  # where Jaeger's model declares it, only when set
        "operationName": span.operationName,
        "references": references,
        "startTime": span.startTime or 0,
        "duration": span.duration or 0,
        "tags": [key_value(tag) for tag in span.tags or []],
        "logs": [
            {"timestamp": log.timestamp or 0, "fields": [key_value(field) for field in log.fields or []]}
            for log in span.logs or []
        ],
        "processID": "",
        "warnings": None,
    }
    return result


def assemble_trace(trace_id: str, spans: list[tuple[Json, Json]]) -> Json:
    """One trace in the UI model: spans in start order, processes numbered p1, p2... as Jaeger does."""
    process_ids: dict[str, str] = {}
    processes: dict[str, Json] = {}
    out = []
    for span, process in sorted(spans, key=lambda item: (item[0]["startTime"], item[0]["spanID"])):
        key = json.dumps(process, sort_keys=True)
        if key not in process_ids:
            process_ids[key] = f"p{len(process_ids) + 1}"
            processes[process_ids[key]] = process
        out.append({**span, "processID": process_ids[key]})
    return {"traceID": trace_id, "spans": out, "processes": processes, "warnings": None}


def tag_text(value: Any) -> str:
    """A tag value as the text a query compares it with (Jaeger compares tags as strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
