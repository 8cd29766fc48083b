"""The store's bound, eviction, journal, search semantics and dependencies."""

from __future__ import annotations

import json

import pytest

from workshop.tracestore.journal import MAX_JOURNAL_LINE
from workshop.tracestore.query import TraceQuery
from workshop.tracestore.store import TraceStore


def span(
    trace: str,
    span_id: str,
    op: str = "op",
    start: int = 1_000,
    duration: int = 10,
    parent: str | None = None,
    tags: dict | None = None,
) -> dict:
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


def test_a_compaction_killed_midway_leaves_no_file_behind_after_a_restart(tmp_path):
    """kill -9 during a compaction leaves its copy beside the journal: the next start removes it, and only it."""
    journal = tmp_path / "traces.jsonl"
    TraceStore(journal=journal).close()
    stale = tmp_path / "traces.jsonlab_3x9zq.tmp"  # mkstemp's name for the journal's compacted copy
    stale.write_bytes(b'{"span": ' * 1000)
    mine = [tmp_path / "traces.jsonl.tmp", tmp_path / "traces.jsonl-notes.tmp", tmp_path / "other12345678.tmp"]
    for path in mine:
        path.write_text("a learner's file")
    TraceStore(journal=journal).close()
    assert not stale.exists() and all(path.exists() for path in mine)


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
    # the time range too is one span's, as Jaeger's stores read it: t1 began at 100, its proxy span at 200
    assert ids(service="proxy", start_us=150, end_us=250) == ["t1"]
    assert ids(service="gateway", start_us=150, end_us=250) == []  # t1's gateway span starts before
    assert ids(service="proxy", start_us=150, min_duration_us=600) == []  # 500 µs: one span meets both or none


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


def test_unreadable_journal_lines_are_skipped_and_counted(tmp_path):
    """Nothing a journal line holds stops the store from starting, or breaks a search afterwards."""
    good = json.dumps({"span": span("t1", "1", tags={"k": "v"}), "process": process("s")}).encode()

    def broken(part: str, key: str, value) -> bytes:
        entry = {"span": span("bad", "1", tags={"k": "v"}), "process": process("s")}
        entry[part][key] = value
        return json.dumps(entry).encode() + b"\n"

    bad = [
        b'{"span": "\xff\xfe not UTF-8"}\n',
        b"\xff\n",
        broken("span", "logs", {"fields": []}),  # not a list
        broken("span", "logs", [{"timestamp": 1, "fields": "none"}]),
        broken("span", "tags", ["a tag"]),
        broken("span", "tags", [{"key": "k", "type": "string", "value": ["v"]}]),
        broken("span", "tags", [{"key": "k", "type": "int64", "value": True}]),
        broken("span", "tags", [{"key": "k", "type": ["string"], "value": "v"}]),
        broken("span", "references", [{"refType": "CHILD_OF", "traceID": "t", "spanID": None}]),
        broken("span", "startTime", "now"),
        broken("span", "duration", 1.5),
        broken("span", "operationName", None),
        broken("process", "tags", None),
        b'{"span": {}, "process": []}\n',
        b"[" * 5_000 + b"]" * 5_000 + b"\n",  # nested too deep for Python's JSON reader
        b"x" * (MAX_JOURNAL_LINE + 10) + b"\n",  # too long to be a span
        b"\n",
        b"[]\n",
    ]
    journal = tmp_path / "traces.jsonl"
    journal.write_bytes(good + b"\n" + b"".join(bad) + good[:-3])  # the last line torn
    store = TraceStore(journal=journal)
    assert store.stats.journal_lines_skipped == len(bad) + 1
    assert store.trace_count() == 1
    assert [t["traceID"] for t in store.find(TraceQuery(service="s", tags={"k": "v"}))] == ["t1"]
    (kept,) = journal.read_text().splitlines()  # compacted to what the store kept
    assert json.loads(kept) == json.loads(good)
    store.close()


def test_a_journal_never_holds_nan_or_infinity(tmp_path):
    """An older store wrote float tags of NaN and infinity as bare NaN and Infinity, which JSON has not:
    reloaded, they are string tags, and the journal is JSON again."""
    journal = tmp_path / "traces.jsonl"
    names = {"a": "NaN", "b": "Infinity", "c": "-Infinity"}
    tags = [{"key": key, "type": "float64", "value": float(name)} for key, name in names.items()]
    journal.write_text(json.dumps({"span": {**span("t1", "1"), "tags": tags}, "process": process("s")}) + "\n")
    store = TraceStore(journal=journal)
    (found,) = store.get("t1")["spans"]
    assert found["tags"] == [{"key": key, "type": "string", "value": name} for key, name in names.items()]
    store.add_spans([(span("t2", "1"), process("s"))])
    store.close()
    for line in journal.read_text().splitlines():
        json.loads(line, parse_constant=reject)


def reject(constant: str):
    raise AssertionError(f"{constant} is not JSON")
