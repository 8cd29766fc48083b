"""What the trace doctor costs: `explain --recent 1000` over a store of 10,000 traces of 10 spans."""

from __future__ import annotations

import time

from workshop.tracestore import model
from workshop.tracestore.diagnosis import diagnose_recent
from workshop.tracestore.query import TraceQuery
from workshop.tracestore.store import TraceStore


def stored_traces(count: int, spans: int = 10) -> TraceStore:
    """A store holding `count` traces like lesson 5's: a gateway, a client call, a producer, a consumer."""
    store = TraceStore(max_traces=count)
    start = int(time.time() * 1_000_000) - count * 10_000
    gateway, worker = model.process("gateway", []), model.process("worker", [])
    for n in range(1, count + 1):
        trace, root, at = f"{n:016x}", f"{n:08x}00000000", start + n * 10_000
        records = [
            (
                model.span(trace, root, "contributors", [], at, 9_000, [model.string_tag("span.kind", "server")], []),
                gateway,
            )
        ]
        for m in range(1, spans):
            kind = {1: "client", 2: "producer", 3: "consumer"}.get(m, "internal")
            tags = [model.string_tag("span.kind", kind), model.tag("http.status_code", "int64", 200)]
            span = model.span(
                trace, f"{n:08x}{m:08x}", f"step{m}", [model.reference("CHILD_OF", trace, root)], at + m, 100, tags, []
            )
            records.append((span, worker if kind == "consumer" else gateway))
        store.add_spans(records)
    return store


def doctor_time(stored: int = 10_000, recent: int = 1_000) -> tuple[float, int]:
    """Seconds for the findings of the newest `recent` traces of a store of `stored` (reading them included),
    and how many groups of findings (0: these traces are whole)."""
    store = stored_traces(stored)
    began = time.perf_counter()
    groups = diagnose_recent(store.find(TraceQuery(limit=recent)))
    return time.perf_counter() - began, len(groups)
