"""The store's limits under load: the journal's size, reloading in bounded memory, the span budget,
queries that do not hold up ingest, and bookkeeping that costs the same however much is held.

Counts and sizes only, never times: speed is for `make bench`."""

from __future__ import annotations

import json
import threading
import tracemalloc
from collections import OrderedDict
from pathlib import Path

from tests.tracestore.test_store import process, span
from workshop.tracestore import store as trace_store
from workshop.tracestore.query import TraceQuery
from workshop.tracestore.store import TraceStore


def trace_id(n: int) -> str:
    return f"{n:016x}"


def held_ids(store: TraceStore) -> set[str]:
    return {t["traceID"] for t in store.find(TraceQuery(service="s", limit=10_000))}


def line_count(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


def test_the_journal_stays_within_a_small_multiple_of_what_is_held(tmp_path):
    journal = tmp_path / "traces.jsonl"
    store = TraceStore(max_traces=50, journal=journal)
    most = 0
    for n in range(500):  # ten times what the store holds
        store.add_spans([(span(trace_id(n), "1"), process("s")), (span(trace_id(n), "2"), process("s"))])
        most = max(most, line_count(journal))
    store.close()
    assert most <= 3 * 100  # 50 traces of 2 spans held
    again = TraceStore(max_traces=50, journal=journal)
    assert held_ids(again) == {trace_id(n) for n in range(450, 500)}  # the newest
    assert again.stats.journal_lines_skipped == 0
    assert line_count(journal) == 100
    again.close()


def test_a_long_journal_is_reloaded_in_bounded_memory(tmp_path):
    journal = tmp_path / "traces.jsonl"
    with journal.open("w") as out:
        for n in range(5_000):
            entry = {"span": span(trace_id(n), "1", tags={"n": str(n)}), "process": process("s")}
            out.write(json.dumps(entry) + "\n")
    size = journal.stat().st_size
    tracemalloc.start()
    try:
        store = TraceStore(max_traces=50, journal=journal)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size / 3, (peak, size)  # every line held as Python values would take several times the file
    assert held_ids(store) == {trace_id(n) for n in range(4_950, 5_000)}
    assert line_count(journal) == 50
    store.close()


def test_the_span_budget_evicts_the_oldest_traces():
    store = TraceStore(max_traces=100, max_spans=50)
    for n in range(10):
        store.add_spans([(span(trace_id(n), str(s)), process("s")) for s in range(10)])
        assert store.span_count() <= 50
    assert held_ids(store) == {trace_id(n) for n in range(5, 10)}
    assert store.stats.traces_evicted == 5 and store.stats.spans_dropped == 0
    alone = TraceStore(max_spans=5)  # no trace is allowed more than the whole budget
    alone.add_spans([(span("big", str(s)), process("s")) for s in range(8)])
    assert alone.span_count() == 5 and alone.stats.spans_dropped == 3


def test_a_query_does_not_hold_up_ingest(monkeypatch):
    """While a query reads spans (here: compares tags), another thread stores a span."""
    store = TraceStore()
    store.add_spans([(span(trace_id(n), "1", tags={"k": "v"}), process("s")) for n in range(3)])
    stored_meanwhile: list[bool] = []
    real_tag_text = trace_store.tag_text

    def tag_text(value) -> str:
        if not stored_meanwhile:
            writer = threading.Thread(target=store.add_spans, args=([(span("new", "1"), process("s"))],))
            writer.start()
            writer.join(timeout=5)  # a bound, not a measure: on a held lock it would wait for the query
            stored_meanwhile.append(not writer.is_alive())
        return real_tag_text(value)

    monkeypatch.setattr(trace_store, "tag_text", tag_text)
    assert len(store.find(TraceQuery(service="s", tags={"k": "v"}))) == 3
    assert stored_meanwhile == [True]
    assert store.get("new") is not None


class NoWalk(OrderedDict):
    """A store's trace table that fails the test when anything walks every trace while `armed`."""

    armed = True

    def _walked(self) -> None:
        if self.armed:
            raise AssertionError("storing a span walked every stored trace")

    def values(self):
        self._walked()
        return super().values()

    def items(self):
        self._walked()
        return super().items()

    def keys(self):
        self._walked()
        return super().keys()

    def __iter__(self):
        self._walked()
        return super().__iter__()


def test_storing_a_span_costs_the_same_however_many_processes_are_held():
    store = TraceStore(max_traces=5_000)
    store._traces = table = NoWalk()  # ingest may look traces up and evict the oldest, never walk them all
    for first in range(0, 20_000, 100):
        records = []
        for n in range(first, first + 100):  # each trace from a process of its own, as from 20,000 clients
            records.append((span(trace_id(n), "1"), {"serviceName": "s", "tags": [tag_of(n)]}))
        store.add_spans(records)
    assert store.trace_count() == 5_000 and store.stats.traces_evicted == 15_000
    # the process table holds the processes of the traces held, none of the evicted ones
    held = {process.value["tags"][0]["value"] for process in store._processes.values()}
    assert held == {str(n) for n in range(15_000, 20_000)}
    table.armed = False  # queries walk
    assert store.services() == ["s"] and len(held_ids(store)) == 5_000


def tag_of(n: int) -> dict:
    return {"key": "client-uuid", "type": "string", "value": str(n)}
