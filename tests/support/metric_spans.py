"""Hand-made spans of known durations, kinds and errors, for the span metrics' tests."""

from __future__ import annotations

from workshop.tracestore import model

GATEWAY = model.process("gateway", [])


def span(n, operation: str, duration_ms: float, now_ms: int, kind: str = "server", error: bool = False, ago_s=30):
    """Span `n` (its own trace) of `operation`, started `ago_s` before `now_ms`."""
    tags = [model.string_tag("span.kind", kind)] + ([model.tag("error", "bool", True)] if error else [])
    start = (now_ms - ago_s * 1000) * 1000
    return model.span(f"{n:016x}", f"{n:016x}", operation, [], start, int(duration_ms * 1000), tags, [])
