"""Read finished spans (jaeger-client's, or OpenTelemetry's, from one InMemoryReporter) as plain Python
values; OpenTelemetry's read as the trace store maps them (events are logs with `event=<name>`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from jaeger_client.thrift_gen.jaeger.ttypes import TagType


def tag_value(tag) -> object:
    return {
        TagType.STRING: tag.vStr,
        TagType.BOOL: tag.vBool,
        TagType.LONG: tag.vLong,
        TagType.DOUBLE: tag.vDouble,
        TagType.BINARY: tag.vBinary,
    }[tag.vType]


@dataclass
class SpanView:
    operation: str
    span_id: int
    parent_id: int | None
    trace_id: int
    tags: dict[str, object]
    logs: list[dict[str, object]]
    start: float
    end: float
    service: str = ""
    children: list[SpanView] = field(default_factory=list)

    def tree(self) -> tuple:
        """(service, operation, [child trees]) with children in start order: compare whole trees with ==."""
        return (self.service, self.operation, [child.tree() for child in self.children])


def view(span) -> SpanView:
    if hasattr(span, "resource"):  # OpenTelemetry's ReadableSpan
        return otel_view(span)
    return SpanView(
        operation=span.operation_name,
        span_id=span.span_id,
        parent_id=span.parent_id or None,
        trace_id=span.trace_id,
        tags={tag.key: tag_value(tag) for tag in span.tags},
        logs=[{f.key: tag_value(f) for f in log.fields} for log in span.logs],
        start=span.start_time,
        end=span.end_time,
        service=span.tracer.service_name,
    )


def otel_view(span) -> SpanView:
    tags = dict(span.attributes or {})
    if span.kind.name != "INTERNAL":
        tags["span.kind"] = span.kind.name.lower()
    if span.status.status_code.name == "ERROR":
        tags["error"] = True
    return SpanView(
        operation=span.name,
        span_id=span.context.span_id,
        parent_id=span.parent.span_id if span.parent else None,
        trace_id=span.context.trace_id,
        tags=tags,
        logs=[{"event": event.name, **dict(event.attributes or {})} for event in span.events],
        start=span.start_time / 1e9,
        end=span.end_time / 1e9,
        service=span.resource.attributes["service.name"],
    )


def build_tree(spans: list) -> SpanView:
    """Link finished spans into one tree and return its root; fails if they are not one tree."""
    views = {v.span_id: v for v in (view(span) for span in spans)}
    roots = [v for v in views.values() if v.parent_id not in views]
    assert len(roots) == 1, f"expected one root span, got {[r.operation for r in roots]}"
    assert len({v.trace_id for v in views.values()}) == 1, "spans of more than one trace"
    for v in sorted(views.values(), key=lambda v: v.start):
        if v.parent_id in views:
            views[v.parent_id].children.append(v)
    return roots[0]


def walk(root: SpanView):
    yield root
    for child in root.children:
        yield from walk(child)


def find(root: SpanView, operation: str) -> list[SpanView]:
    return [v for v in walk(root) if v.operation == operation]


def settled(reporter, quiet: float = 0.1, timeout: float = 5.0) -> list:
    """The reporter's spans once no new one has come for `quiet` seconds.

    A worker answers from inside its span, so the answer can reach the gateway (and the test) a moment
    before the worker's span finishes."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        spans = reporter.get_spans()
        if len(spans) == count:
            return spans
        count = len(spans)
        time.sleep(quiet)
    return reporter.get_spans()
