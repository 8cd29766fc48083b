"""Thrift spans -> Jaeger's UI JSON model, the shape Jaeger's query API serves and its UI uploads.

As Jaeger's `model/json` package declares it. Ids are unsigned hex (thrift carries signed 64-bit),
times are microseconds, tags and log fields are `{"key", "type", "value"}`.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from jaeger_client.thrift_gen.jaeger.ttypes import Batch, SpanRefType, TagType

UINT64 = (1 << 64) - 1
JS_MAX_SAFE_INTEGER = (1 << 53) - 1  # larger int64 values travel as strings, as in Jaeger
REF_TYPES = {SpanRefType.CHILD_OF: "CHILD_OF", SpanRefType.FOLLOWS_FROM: "FOLLOWS_FROM"}
# what each tag type's value may be in JSON (bool is an int in Python: it is told apart below)
VALUE_KINDS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "bool": (bool,),
    "int64": (int, str),
    "float64": (float, int),
    "binary": (str,),
}

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
        shown = repr(text) if len(text) <= 40 else repr(text[:40]) + f"... ({len(text)} characters)"
        raise ValueError(f"not a trace id: {shown} (1 to 32 hex digits)")
    number = int(value, 16)
    return trace_id_hex(number >> 64, number & UINT64)


def key_value(tag) -> Json:
    key = tag.key or ""
    if tag.vType == TagType.STRING:
        return {"key": key, "type": "string", "value": tag.vStr or ""}
    if tag.vType == TagType.BOOL:
        return {"key": key, "type": "bool", "value": bool(tag.vBool)}
    if tag.vType == TagType.LONG:
        value = tag.vLong or 0
        return {"key": key, "type": "int64", "value": value if abs(value) <= JS_MAX_SAFE_INTEGER else str(value)}
    if tag.vType == TagType.DOUBLE:
        return float_key_value(key, tag.vDouble or 0.0)
    if tag.vType == TagType.BINARY:
        return {"key": key, "type": "binary", "value": base64.b64encode(tag.vBinary or b"").decode()}
    return {"key": key, "type": "string", "value": f"<unknown tag type {tag.vType}>"}


def float_key_value(key: str, value: float) -> Json:
    """A float64 tag; infinities and NaN, which JSON cannot hold, become string tags named as JavaScript names them."""
    if math.isfinite(value):
        return {"key": key, "type": "float64", "value": value}
    name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return {"key": key, "type": "string", "value": name}


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
    keys: dict[int, str] = {}  # by id(): a store's spans share their process, so each is written once
    out = []
    for span, process in sorted(spans, key=lambda item: (item[0]["startTime"], item[0]["spanID"])):
        key = keys.get(id(process))
        if key is None:
            key = keys[id(process)] = json.dumps(process, sort_keys=True)
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


# --- spans read back from a file (the store's journal): untrusted, checked field by field --------------


def checked_span(value: Any) -> Json:
    """`value` as a span of the UI model (keys in the model's order); ValueError if it is not one."""
    span = _object(value, "span")
    flags = span.get("flags")
    return {
        "traceID": _string(span.get("traceID"), "traceID"),
        "spanID": _string(span.get("spanID"), "spanID"),
        **({"flags": _integer(flags, "flags")} if flags else {}),
        "operationName": _string(span.get("operationName"), "operationName"),
        "references": [_reference(ref) for ref in _array(span.get("references"), "references")],
        "startTime": _integer(span.get("startTime"), "startTime"),
        "duration": _integer(span.get("duration"), "duration"),
        "tags": [checked_key_value(tag) for tag in _array(span.get("tags"), "tags")],
        "logs": [_log(entry) for entry in _array(span.get("logs"), "logs")],
        "processID": "",
        "warnings": None,
    }


def checked_process(value: Any) -> Json:
    process = _object(value, "process")
    return {
        "serviceName": _string(process.get("serviceName"), "serviceName"),
        "tags": [checked_key_value(tag) for tag in _array(process.get("tags"), "process tags")],
    }


def checked_key_value(value: Any) -> Json:
    tag = _object(value, "tag")
    key, kind, content = _string(tag.get("key"), "tag key"), tag.get("type"), tag.get("value")
    if not isinstance(kind, str) or kind not in VALUE_KINDS:
        raise ValueError(f"tag {key!r}: unknown type {kind!r}")
    if not isinstance(content, VALUE_KINDS[kind]) or isinstance(content, bool) != (kind == "bool"):
        raise ValueError(f"tag {key!r}: a {kind} tag cannot hold {type(content).__name__}")
    if isinstance(content, float):
        return float_key_value(key, content)
    return {"key": key, "type": kind, "value": content}


def _reference(value: Any) -> Json:
    ref = _object(value, "reference")
    if ref.get("refType") not in ("CHILD_OF", "FOLLOWS_FROM"):
        raise ValueError(f"unknown reference type {ref.get('refType')!r}")
    return {
        "refType": ref["refType"],
        "traceID": _string(ref.get("traceID"), "reference traceID"),
        "spanID": _string(ref.get("spanID"), "reference spanID"),
    }


def _log(value: Any) -> Json:
    entry = _object(value, "log")
    return {
        "timestamp": _integer(entry.get("timestamp"), "log timestamp"),
        "fields": [checked_key_value(field) for field in _array(entry.get("fields"), "log fields")],
    }


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _array(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _integer(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} is not a whole number")
    return value
