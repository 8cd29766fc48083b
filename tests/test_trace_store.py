"""The store's bound, eviction, journal, search semantics and dependencies."""

from __future__ import annotations

import json

import pytest

from workshop.trace_store import TraceQuery, TraceStore


def span(trace: str, span_id: str, op: str = "op", start: int = 1_000, duration: int = 10, parent: str | None = None,
         tags: dict | None = None) -> dict:  # fmt: skip
    return {
        "traceID": trace,
        "spanID": span_id,
        "operationName": op,
        "references": [{"refType": "CHILD_OF", "traceID": trace, "spanID": parent}] if parent else [],
        "startTime": start,
        "duration": duration,
        "tags": [{"key": k, "type": "string", "value": v} for k, v in (tags or {}).items()],
        "logs": [],
        "processID": "",
        "warnings": None,
    }


def process(service: str) -> dict:
    return {"serviceName": service, "tags": []}


def test_bounded_oldest_evicted():
    store = TraceStore(max_traces=3)
    for n in range(5):
        store.add_spans([(span(f"{n:016x}", "1"), process("a"))])
    assert store.trace_count() == 3
    assert store.stats.traces_evicted == 2
    assert store.get(f"{0:016x}") is None and store.get(f"{4:016x}") is not None


def test_a_trace_still_receiving_spans_is_kept():
    store = TraceStore(max_traces=2)
    store.add_spans([(span("a", "1"), process("s"))])
    store.add_spans([(span("b", "1"), process("s"))])
    store.add_spans([(span("a", "2", parent="1"), process("s"))])  # "a" is the newest now
    store.add_spans([(span("c", "1"), process("s"))])
    assert store.get("a") is not None and store.get("b") is None


def test_spans_per_trace_are_bounded():
    store = TraceStore(max_spans_per_trace=2)
    store.add_spans([(span("a", str(n)), process("s")) for n in range(5)])
    assert len(store.get("a")["spans"]) == 2
    assert store.stats.spans_dropped == 3


def test_journal_survives_a_restart_and_is_compacted(tmp_path):
    journal = tmp_path / "traces.jsonl"
    store = TraceStore(max_traces=2, journal=journal)
    for n in range(4):
        store.add_spans([(span(f"t{n}", "1"), process("s"))])
    store.close()
    assert len(journal.read_text().splitlines()) == 4
    with journal.open("a") as out:
        out.write("not json\n")
        out.write(json.dumps({"span": {"traceID": 5}, "process": {}}) + "\n")
    again = TraceStore(max_traces=2, journal=journal)
    assert again.trace_count() == 2
    assert again.get("t3") is not None and again.get("t0") is None
    assert again.stats.journal_lines_skipped == 2
    assert len(journal.read_text().splitlines()) == 2  # what the bound kept
    again.close()


def test_search_matches_one_span_on_every_criterion():
    store = TraceStore()
    store.add_spans(
        [
            (span("t1", "1", "request", start=100, duration=900), process("gateway")),
            (span("t1", "2", "call", start=200, duration=500, parent="1", tags={"error": "true"}), process("proxy")),
            (span("t2", "1", "request", start=2000, duration=50), process("gateway")),
        ]
    )

    def ids(**criteria) -> list[str]:
        return [t["traceID"] for t in store.find(TraceQuery(**criteria))]

    assert ids(service="gateway") == ["t2", "t1"]  # newest first
    assert ids(service="proxy") == ["t1"]
    assert ids(service="gateway", tags={"error": "true"}) == []  # the error span is the proxy's
    assert ids(service="proxy", tags={"error": "true"}) == ["t1"]
    assert ids(service="gateway", min_duration_us=100) == ["t1"]
    assert ids(service="gateway", max_duration_us=100) == ["t2"]
    assert ids(service="gateway", operation="call") == []
    assert ids(service="gateway", start_us=1000) == ["t2"]
    assert ids(service="gateway", end_us=1000) == ["t1"]
    assert ids(service="gateway", limit=1) == ["t2"]
    assert ids(trace_ids=["t1", "nope"]) == ["t1"]


def test_services_operations_dependencies():
    store = TraceStore()
    store.add_spans(
        [
            (span("t1", "1", "request", tags={"span.kind": "server"}), process("gateway")),
            (span("t1", "2", "call", parent="1", tags={"span.kind": "client"}), process("gateway")),
            (span("t1", "3", "serve", parent="2"), process("proxy")),
            (span("t2", "1", "request"), process("gateway")),
            (span("t2", "3", "serve", parent="1"), process("proxy")),
        ]
    )
    assert store.services() == ["gateway", "proxy"]
    assert store.operations("gateway") == [("call", "client"), ("request", ""), ("request", "server")]
    assert store.dependencies() == [{"parent": "gateway", "child": "proxy", "callCount": 2}]


def test_bound_must_be_positive():
    with pytest.raises(ValueError):
        TraceStore(max_traces=0)
