"""The one model of a trace: Jaeger's UI JSON model, the shape Jaeger's query API serves and its UI uploads.

As Jaeger's `model/json` package declares it: ids are unsigned hex, times are microseconds, tags and
log fields are `{"key", "type", "value"}`. Every receiver builds its spans with the constructors here,
the store keeps them, and the pages, the terminal and API v3 read a trace through `TraceTree`.

The standard library only: whatever reads a trace (the terminal, the doctor) imports no wire format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]
SpanRecord = tuple[Json, Json]  # (a span without its processID, its process)

UINT64 = (1 << 64) - 1
JS_MAX_SAFE_INTEGER = (1 << 53) - 1  # larger int64 values travel as strings, as in Jaeger
CHILD_OF, FOLLOWS_FROM = "CHILD_OF", "FOLLOWS_FROM"
REFERENCE_TYPES = (CHILD_OF, FOLLOWS_FROM)
UNKNOWN_SERVICE = "?"


class BadInput(ValueError):
    """Input from outside that is not what it should be: `status` and the message are the answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# --- ids -------------------------------------------------------------------------------------------------


def trace_id_hex(high: int | None, low: int) -> str:
    """A trace id as stored: 16 hex digits when its high half is zero (jaeger-client's 64-bit ids), else 32."""
    high, low = (high or 0) & UINT64, low & UINT64
    return f"{high:016x}{low:016x}" if high else f"{low:016x}"


def span_id_hex(span_id: int) -> str:
    return f"{span_id & UINT64:016x}"


def trace_id_from_bytes(raw: bytes) -> str:
    """A 16-byte trace id (OTLP's) as stored."""
    return trace_id_hex(int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big"))


def normalize_trace_id(text: str) -> str:
    """Any spelling of a trace id (upper case, leading zeros, 32 digits) -> the form we store."""
    value = text.strip().lower()
    if not value or len(value) > 32 or any(c not in "0123456789abcdef" for c in value):
        shown = repr(text) if len(text) <= 40 else repr(text[:40]) + f"... ({len(text)} characters)"
        raise ValueError(f"not a trace id: {shown} (1 to 32 hex digits)")
    number = int(value, 16)
    return trace_id_hex(number >> 64, number & UINT64)


def low_half(trace_id: str) -> str:
    """The 64 bits a 64-bit and a 128-bit id of one request share."""
    return trace_id[-16:].rjust(16, "0")


# --- constructors: every receiver writes its spans with these -------------------------------------------


def tag(key: str, kind: str, value: Any) -> Json:
    """A tag or log field: `kind` is string, bool, int64, float64 or binary (base64 text)."""
    if kind == "float64":
        return float_tag(key, value)
    return {"key": key, "type": kind, "value": value}


def string_tag(key: str, value: Any) -> Json:
    return {"key": key, "type": "string", "value": str(value)}


def int_tag(key: str, value: int) -> Json:
    """An int64 tag; past JavaScript's safe integers the value travels as a string, as in Jaeger."""
    return {"key": key, "type": "int64", "value": value if abs(value) <= JS_MAX_SAFE_INTEGER else str(value)}


def float_tag(key: str, value: float) -> Json:
    """A float64 tag; infinities and NaN, which JSON cannot hold, become string tags named as JavaScript names them."""
    if math.isfinite(value):
        return {"key": key, "type": "float64", "value": value}
    name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return {"key": key, "type": "string", "value": name}


def reference(ref_type: str, trace_id: str, span_id: str) -> Json:
    return {"refType": ref_type, "traceID": trace_id, "spanID": span_id}


def log_entry(timestamp: int, fields: list[Json]) -> Json:
    return {"timestamp": timestamp, "fields": fields}


def process(service: str, tags: list[Json]) -> Json:
    return {"serviceName": service, "tags": tags}


def span(
    trace_id: str,
    span_id: str,
    operation: str,
    references: list[Json],
    start: int,
    duration: int,
    tags: list[Json],
    logs: list[Json],
    flags: int = 0,
) -> Json:
    """A span in the model's key order; `flags` only when set, where Jaeger's model declares it."""
    return {
        "traceID": trace_id,
        "spanID": span_id,
        **({"flags": flags} if flags else {}),
        "operationName": operation,
        "references": references,
        "startTime": start,
        "duration": duration,
        "tags": tags,
        "logs": logs,
        "processID": "",
        "warnings": None,
    }


def assemble_trace(trace_id: str, spans: list[SpanRecord]) -> Json:
    """One trace in the UI model: spans in start order, processes numbered p1, p2... as Jaeger does."""
    process_ids: dict[str, str] = {}
    processes: dict[str, Json] = {}
    keys: dict[int, str] = {}  # by id(): a store's spans share their process, so each is written once
    out = []
    for found, owner in sorted(spans, key=lambda item: (item[0]["startTime"], item[0]["spanID"])):
        key = keys.get(id(owner))
        if key is None:
            key = keys[id(owner)] = json.dumps(owner, sort_keys=True)
        if key not in process_ids:
            process_ids[key] = f"p{len(process_ids) + 1}"
            processes[process_ids[key]] = owner
        out.append({**found, "processID": process_ids[key]})
    return {"traceID": trace_id, "spans": out, "processes": processes, "warnings": None}


# --- reading a span --------------------------------------------------------------------------------------


def tag_text(value: Any) -> str:
    """A tag value as text: as a query compares it (Jaeger compares tags as strings) and as pages show it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_error(span: Json) -> bool:
    """Marked as an error: `error=true` (OpenTracing's mark; receivers give OTLP's status ERROR this tag too)."""
    return any(t["key"] == "error" and t["value"] in (True, "true") for t in span["tags"])


def tag_value(span: Json, key: str, default: Any = None) -> Any:
    """The value of the span's first tag named `key`."""
    return next((t["value"] for t in span["tags"] if t["key"] == key), default)


def span_kind(span: Json) -> str:
    """server, client, producer, consumer, internal, or "" when the span does not say."""
    return tag_text(tag_value(span, "span.kind", ""))


# --- a trace as a tree -------------------------------------------------------------------------------------


@dataclass(eq=False)
class SpanNode:
    """A span in its trace: its service, its parent in the trace (None for a root) and its children."""

    span: Json
    service: str
    process: Json
    parent: SpanNode | None = None
    reference: str = ""  # how it refers to its parent: CHILD_OF or FOLLOWS_FROM; "" for a root
    depth: int = 0
    children: list[SpanNode] = field(default_factory=list)
    cycle: tuple[str, ...] = ()  # bad input: the span ids of a cycle of parents it was cut from (itself alone, too)

    def ancestors(self) -> Iterator[SpanNode]:
        """Its parent, the parent's parent, ... up to the root."""
        parent = self.parent
        while parent is not None:
            yield parent
            parent = parent.parent

    def descendants(self) -> Iterator[SpanNode]:
        """Every span below it, depth first (no recursion: any depth)."""
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    @property
    def id(self) -> str:
        return self.span["spanID"]

    @property
    def operation(self) -> str:
        return self.span["operationName"]

    @property
    def start(self) -> int:
        return self.span["startTime"]

    @property
    def duration(self) -> int:
        return self.span["duration"]

    @property
    def end(self) -> int:
        return self.start + self.duration

    @property
    def error(self) -> bool:
        return is_error(self.span)

    @property
    def kind(self) -> str:
        return span_kind(self.span)

    @property
    def tags(self) -> dict[str, Any]:
        """Its tags by key (the first of a repeated key)."""
        found: dict[str, Any] = {}
        for entry in self.span["tags"]:
            found.setdefault(entry["key"], entry["value"])
        return found

    @property
    def follows_from(self) -> bool:
        """Its first reference is FOLLOWS_FROM: the span that caused it did not wait for it."""
        refs = self.span["references"]
        return bool(refs) and refs[0]["refType"] == FOLLOWS_FROM

    @property
    def links(self) -> list[Json]:
        """References other than the one to its parent: FOLLOWS_FROM links, to this trace or another."""
        parent = self.parent.id if self.parent is not None else None
        return [r for r in self.span["references"] if r["spanID"] != parent]

    @property
    def missing_parent(self) -> str | None:
        """The span id of a parent it names but the trace does not hold (never finished, flushed or sent)."""
        reference = self.missing_reference
        return reference["spanID"] if reference is not None else None

    @property
    def missing_reference(self) -> Json | None:
        """The reference to a parent the trace does not hold: a CHILD_OF, or a FOLLOWS_FROM within its own trace
        (one to another trace is a link, as OTLP's links are). None when its parent is here, when it names
        none, and when it was cut out of a cycle of parents (its parent is here, but cannot be)."""
        if self.parent is not None or self.cycle:
            return None
        own = low_half(self.span["traceID"])
        return next(
            (r for r in self.span["references"] if r["refType"] == CHILD_OF or low_half(r["traceID"]) == own), None
        )


class TraceTree:
    """A trace's spans as a forest: roots (usually one) in start order, each span's children in start order.

    A span's parent is the first span it references that the trace holds (by span id, so a 64-bit and a
    128-bit trace id of one request still join); a span that references none is a root. A cycle of
    references (bad input) is cut, so every span appears exactly once.
    """

    def __init__(self, trace: Json):
        self.trace = trace
        self.trace_id: str = trace["traceID"]
        processes = trace.get("processes") or {}
        ordered = sorted(trace["spans"], key=lambda s: (s["startTime"], s["spanID"]))
        self.spans: list[SpanNode] = []  # in start order
        self.by_id: dict[str, SpanNode] = {}
        for found in ordered:
            owner = processes.get(found["processID"], {})
            node = SpanNode(found, str(owner.get("serviceName", UNKNOWN_SERVICE)), owner)
            self.spans.append(node)
            self.by_id.setdefault(node.id, node)
        self._link()

    def _link(self) -> None:
        for node in self.spans:
            ref = next((r for r in node.span["references"] if self.by_id.get(r["spanID"]) not in (None, node)), None)
            if ref is not None:
                node.parent, node.reference = self.by_id[ref["spanID"]], ref["refType"]
            elif any(r["spanID"] == node.id for r in node.span["references"]):
                node.cycle = (node.id,)  # its own parent (bad input)
        self._cut_cycles()
        for node in self.spans:  # start order, so children are in start order too
            if node.parent is not None:
                node.parent.children.append(node)
        self.roots: list[SpanNode] = [node for node in self.spans if node.parent is None]
        for node in self.walk():
            node.depth = node.parent.depth + 1 if node.parent is not None else 0

    def _cut_cycles(self) -> None:
        """Spans that are each other's ancestors (bad input): the first one reached becomes a root. Each span
        is walked past once, so this is linear in the spans, however deep the trace."""
        walked: dict[int, int] = {}  # id(node) -> the walk that first reached it
        for number, node in enumerate(self.spans):
            current: SpanNode | None = node
            while current is not None and id(current) not in walked:
                walked[id(current)] = number
                current = current.parent
            if current is not None and walked[id(current)] == number:  # back on this walk's own path
                members, member = [current.id], current.parent
                while member is not None and member is not current:
                    members.append(member.id)
                    member = member.parent
                current.parent, current.reference, current.cycle = None, "", tuple(members)

    def walk(self) -> Iterator[SpanNode]:
        """Every span in display order: depth first, children in start order (no recursion: any depth)."""
        stack = list(reversed(self.roots))
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    @property
    def root(self) -> SpanNode | None:
        return self.roots[0] if self.roots else None

    @property
    def start(self) -> int:
        return min((node.start for node in self.spans), default=0)

    @property
    def end(self) -> int:
        return max((node.end for node in self.spans), default=0)

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def services(self) -> list[str]:
        return sorted({node.service for node in self.spans})

    @property
    def depth(self) -> int:
        return max((node.depth for node in self.spans), default=-1) + 1

    @property
    def errors(self) -> list[SpanNode]:
        return [node for node in self.walk() if node.error]

    @property
    def orphans(self) -> list[SpanNode]:
        """Roots that reference a span the trace does not hold: a parent never received, or a link elsewhere."""
        return [node for node in self.roots if node.span["references"]]
