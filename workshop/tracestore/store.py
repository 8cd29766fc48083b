"""Traces in memory, bounded (oldest evicted), optionally journaled to a JSON-lines file, searchable
the way Jaeger's query service searches: a trace matches when one of its spans matches every criterion.

Each span is kept as its compact JSON (about a fifth of the memory of the same span as Python dicts)
beside the few fields a search looks at first; a span's tags and logs are parsed only when a query
asks about tags.

Two bounds hold memory: `max_traces` and `max_spans` (spans in all); beyond either, the traces that
received a span least recently go first. Every count the store keeps (spans, processes, services and
operations) is updated span by span as spans come and go, so storing a span costs the same however
much the store holds. A query copies what it reads under the lock (references only, quick) and
filters, sorts and assembles outside it, so a slow query does not hold up ingest.

The journal gets one line per stored span. When it holds more than `JOURNAL_GROWTH` times the
spans the store holds, it is rewritten with only those (outside the lock too), so it stays within
a small multiple of what is held. At start it is read line by line into the bounded store: lines
that cannot be read (torn, not UTF-8, not JSON, not a span) are skipped and counted.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from workshop.tracestore.journal import Journal, Loading, journal_line, read_journal, remove
from workshop.tracestore.model import Json, SpanRecord, assemble_trace, is_error, tag_text
from workshop.tracestore.query import TraceQuery
from workshop.tracestore.spanmetrics import Recorded, SpanMetrics

log = logging.getLogger("workshop.tracestore.store")

DEFAULT_MAX_TRACES = 10_000
DEFAULT_MAX_SPANS = 1_000_000  # about 1 GiB of spans like jaeger-client's (a few tags, a log)
DEFAULT_MAX_SPANS_PER_TRACE = 10_000
JOURNAL_GROWTH = 2  # the journal is compacted when it has more than this many lines per span held
RELOAD_CHUNK = 128  # journal lines parsed before they are stored: what reloading holds besides the store


@dataclass
class StoreStats:
    spans_stored: int = 0
    spans_dropped: int = 0  # beyond a trace's span limit
    traces_evicted: int = 0  # beyond max_traces or max_spans, least recently received first
    journal_lines_skipped: int = 0  # unreadable at reload: torn, not UTF-8, not JSON, not a span
    journal_compactions: int = 0
    journal_errors: int = 0  # failed writes (a full disk?): those spans are in memory only


@dataclass(eq=False)
class _Process:
    key: bytes  # its compact JSON, as the journal writes it
    value: Json
    service: str
    spans: int = 0  # stored spans of this process: forgotten at 0


class _Span(NamedTuple):
    blob: bytes  # the span's JSON
    process: _Process
    operation: str
    start: int
    duration: int
    kind: str
    parents: tuple[str, ...]  # span ids it references

    @property
    def service(self) -> str:
        return self.process.service

    def record(self) -> SpanRecord:
        return json.loads(self.blob), self.process.value

    def journal_line(self) -> bytes:
        return journal_line(self.blob, self.process.key)


SpanFields = tuple[str, int, int, str, tuple[str, ...]]  # _Span's fields after `process`


class _Prepared(NamedTuple):
    """A span made ready to store outside the lock."""

    trace_id: str
    span_id: str
    blob: bytes
    process_key: bytes
    process: Json
    fields: SpanFields
    error: bool


@dataclass
class _Trace:
    spans: dict[str, _Span] = field(default_factory=dict)
    start: int = 0  # its first span's start
    last: int = 0  # its last span's start

    def add(self, span_id: str, span: _Span) -> None:
        self.start = min(self.start, span.start) if self.spans else span.start
        self.last = max(self.last, span.start) if self.spans else span.start
        self.spans[span_id] = span

    def may_match(self, query: TraceQuery) -> bool:
        """Whether a span of it may start in the query's time range (see _span_matches)."""
        return (query.end_us is None or self.start <= query.end_us) and (
            query.start_us is None or self.last >= query.start_us
        )


class _TraceView(NamedTuple):
    """A trace as a query reads it: a copy of its span table, so ingest can go on meanwhile."""

    trace_id: str
    start: int
    spans: dict[str, _Span]

    def assemble(self) -> Json:
        return assemble_trace(self.trace_id, [span.record() for span in self.spans.values()])


class TraceStore:
    def __init__(
        self,
        max_traces: int = DEFAULT_MAX_TRACES,
        max_spans_per_trace: int = DEFAULT_MAX_SPANS_PER_TRACE,
        journal: Path | None = None,
        max_spans: int = DEFAULT_MAX_SPANS,
    ):
        if min(max_traces, max_spans_per_trace, max_spans) < 1:
            raise ValueError("max_traces, max_spans and max_spans_per_trace must be at least 1")
        self.max_traces = max_traces
        self.max_spans = max_spans
        self.max_spans_per_trace = max_spans_per_trace
        self.stats = StoreStats()
        self.metrics = SpanMetrics()  # calls, errors and latencies per operation, counted as spans are stored
        self._traces: OrderedDict[str, _Trace] = OrderedDict()  # least recently received first
        self._processes: dict[bytes, _Process] = {}  # each process once, shared by its stored spans
        self._operations: dict[str, dict[tuple[str, str], int]] = {}  # service -> (operation, kind) -> spans
        self._span_count = 0
        self._lock = threading.Lock()
        self._journal: Journal | None = None
        self._pending: list[bytes] | None = None  # lines appended while the journal is being compacted
        if journal is not None:
            self.open_journal(journal)

    # --- writing ---------------------------------------------------------------------------------

    def add_spans(self, records: list[SpanRecord], journal: bool = True) -> int:
        """Store `records`; how many were stored (the others were beyond their trace's span limit)."""
        prepared = _prepare(records)
        stored: list[_Span] = []
        counted: list[Recorded] = []  # the spans new to the store, for its span metrics
        with self._lock:
            for item in prepared:
                span = self._add(item, counted)
                if span is not None:
                    stored.append(span)
            compaction = self._journal_append(stored) if journal else None
        self.metrics.record_many(counted)
        if compaction is not None:
            self._compact_journal(*compaction)
        return len(stored)

    def _add(self, item: _Prepared, counted: list[Recorded]) -> _Span | None:
        trace = self._trace_for(item.trace_id)
        old = trace.spans.get(item.span_id)
        if old is None and len(trace.spans) >= min(self.max_spans_per_trace, self.max_spans):
            self.stats.spans_dropped += 1
            return None
        if old is not None:  # sent again: the new one replaces it
            self._forget(old)
        span = _Span(item.blob, self._process(item.process_key, item.process), *item.fields)
        if old is None:  # counted once, however often it is sent
            counted.append((span.service, span.operation, span.kind, span.start, span.duration, item.error))
        trace.add(item.span_id, span)
        self._remember(span)
        self.stats.spans_stored += 1
        while self._span_count > self.max_spans and len(self._traces) > 1:
            self._evict_oldest()  # never this span's trace: it is the newest
        return span

    def _trace_for(self, trace_id: str) -> _Trace:
        trace = self._traces.get(trace_id)
        if trace is not None:
            self._traces.move_to_end(trace_id)
            return trace
        trace = self._traces[trace_id] = _Trace()
        while len(self._traces) > self.max_traces:
            self._evict_oldest()
        return trace

    def _evict_oldest(self) -> None:
        _, trace = self._traces.popitem(last=False)
        for span in trace.spans.values():
            self._forget(span)
        self.stats.traces_evicted += 1

    def _process(self, key: bytes, value: Json) -> _Process:
        process = self._processes.get(key)
        if process is None:
            process = self._processes[key] = _Process(key, value, str(value["serviceName"]))
        return process

    def _remember(self, span: _Span) -> None:
        """Count a span in: O(1), whatever the store holds."""
        self._span_count += 1
        span.process.spans += 1
        operations = self._operations.setdefault(span.service, {})
        pair = (span.operation, span.kind)
        operations[pair] = operations.get(pair, 0) + 1

    def _forget(self, span: _Span) -> None:
        """Count a span out; a process, service or operation no stored span has any more is forgotten."""
        self._span_count -= 1
        process = span.process
        process.spans -= 1
        if process.spans == 0 and self._processes.get(process.key) is process:
            del self._processes[process.key]
        operations = self._operations[span.service]
        pair = (span.operation, span.kind)
        operations[pair] -= 1
        if operations[pair] == 0:
            del operations[pair]
            if not operations:
                del self._operations[span.service]

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    # --- the journal -----------------------------------------------------------------------------

    def open_journal(self, path: Path, loading: Loading | None = None) -> None:
        """Reload `path` if it exists, rewrite it with what the bounds kept, then append every new span.
        `loading` follows the reload, which queries may read meanwhile; if it is cancelled, this stops."""
        journal = Journal(path)
        stale = journal.remove_stale_copies()
        if stale:
            log.warning("removed %s, left by a compaction of %s that was cut short", ", ".join(stale), path)
        self._reload(path, loading)
        if loading is not None and loading.cancelled:
            return
        with self._lock:
            spans = self._held_spans()
            journal.install(journal.write_temporary(span.journal_line() for span in spans), [])
            self._journal = journal

    def _reload(self, path: Path, loading: Loading | None) -> None:
        """Store the spans `path` holds, a few hundred at a time: only what the bounds keep stays in memory."""
        if not path.exists():
            return
        chunk: list[SpanRecord] = []
        skipped = 0
        for record in read_journal(path, loading):
            if record is None:
                skipped += 1
                continue
            chunk.append(record)
            if len(chunk) == RELOAD_CHUNK:
                self._reload_chunk(chunk, loading)
                chunk = []
                if loading is not None and loading.cancelled:
                    return
        self._reload_chunk(chunk, loading)
        self.stats.journal_lines_skipped += skipped
        if skipped:
            log.warning("skipped %d unreadable lines of %s", skipped, path)

    def _reload_chunk(self, chunk: list[SpanRecord], loading: Loading | None) -> None:
        stored = self.add_spans(chunk, journal=False)
        if loading is not None:
            loading.spans += stored
            if loading.on_progress is not None:
                loading.on_progress(loading)

    def _journal_append(self, stored: list[_Span]) -> tuple[Journal, list[_Span]] | None:
        """Append `stored` to the journal (under the lock). When the journal has grown past its bound
        and no compaction is under way: the journal and the spans to rewrite it with."""
        journal = self._journal
        if journal is None or not stored:
            return None
        lines = [span.journal_line() for span in stored]
        try:
            journal.append(lines)
        except OSError as problem:
            self._journal_error("could not append to", problem)
        if self._pending is not None:
            self._pending.extend(lines)
            return None
        if journal.lines <= JOURNAL_GROWTH * self._span_count:
            return None
        self._pending = []
        return journal, self._held_spans()

    def _compact_journal(self, journal: Journal, spans: list[_Span]) -> None:
        """Rewrite the journal with `spans` (what the store held) outside the lock, then, under it, add
        the lines appended meanwhile and put the new file in the old one's place."""
        try:
            temporary = journal.write_temporary(span.journal_line() for span in spans)
        except OSError as problem:
            temporary = None
            self._journal_error("could not compact", problem)
        with self._lock:
            pending, self._pending = self._pending or [], None
            if temporary is None:
                return
            if self._journal is not journal:  # closed meanwhile: the old file has every line
                remove(temporary[0])
                return
            try:
                journal.install(temporary, pending)
                self.stats.journal_compactions += 1
            except OSError as problem:
                remove(temporary[0])
                self._journal_error("could not compact", problem)

    def _held_spans(self) -> list[_Span]:
        """Every span held, least recently received trace first: the order a reload keeps."""
        return [span for trace in self._traces.values() for span in trace.spans.values()]

    def _journal_error(self, doing: str, problem: OSError) -> None:
        self.stats.journal_errors += 1
        if self.stats.journal_errors in (1, 10, 100) or self.stats.journal_errors % 1000 == 0:
            log.warning("%s the journal (%d failures so far): %s", doing, self.stats.journal_errors, problem)

    # --- reading ---------------------------------------------------------------------------------

    def trace_count(self) -> int:
        with self._lock:
            return len(self._traces)

    def span_count(self) -> int:
        with self._lock:
            return self._span_count

    def get(self, trace_id: str) -> Json | None:
        with self._lock:
            view = self._view(trace_id) if trace_id in self._traces else None
        return view.assemble() if view else None

    def _view(self, trace_id: str) -> _TraceView:
        trace = self._traces[trace_id]
        return _TraceView(trace_id, trace.start, trace.spans.copy())

    def services(self) -> list[str]:
        with self._lock:
            return sorted(self._operations)

    def operations(self, service: str) -> list[tuple[str, str]]:
        """(operation name, span kind) pairs seen for a service."""
        with self._lock:
            found = list(self._operations.get(service, ()))
        return sorted(found)

    def find(self, query: TraceQuery) -> list[Json]:
        """Matching traces, newest first, at most `query.limit`."""
        return list(self.find_lazily(query))

    def find_lazily(self, query: TraceQuery) -> Iterator[Json]:
        """The traces `find` returns, each assembled only when it is asked for (a large answer can be
        sent trace by trace). Which traces they are is settled before this returns."""
        with self._lock:
            if query.trace_ids:
                views = [self._view(tid) for tid in dict.fromkeys(query.trace_ids) if tid in self._traces]
                return (view.assemble() for view in views)
            newest = sorted(
                ((tid, trace) for tid, trace in self._traces.items() if trace.may_match(query)),
                key=lambda item: item[1].start,
                reverse=True,
            )
            if not query.tags:  # matched here, cheaply: only the traces answered are copied (not all 10,000)
                views = []
                for tid, trace in newest:
                    if len(views) == query.limit:
                        break
                    if any(_span_matches(span, query) for span in trace.spans.values()):
                        views.append(self._view(tid))
                return (view.assemble() for view in views)
            views = [self._view(tid) for tid, _ in newest]  # tags are matched outside the lock: they are decoded
        views = [view for view in views if any(_span_matches(span, query) for span in view.spans.values())]
        del views[query.limit :]
        return (view.assemble() for view in views)

    def dependencies(self, end_us: int | None = None, lookback_us: int | None = None) -> list[Json]:
        """Service-to-service call counts: a span whose parent belongs to another service is one call."""
        start_us = end_us - lookback_us if end_us is not None and lookback_us is not None else None
        window = TraceQuery(start_us=start_us, end_us=end_us)
        with self._lock:
            views = [self._view(tid) for tid, trace in self._traces.items() if _in_range(trace.start, window)]
        counts: dict[tuple[str, str], int] = {}
        for view in views:
            for span in view.spans.values():
                parent = next((view.spans[p] for p in span.parents if p in view.spans), None)
                if parent is not None and parent.service != span.service:
                    pair = (parent.service, span.service)
                    counts[pair] = counts.get(pair, 0) + 1
        return [{"parent": p, "child": c, "callCount": n} for (p, c), n in sorted(counts.items())]


def _prepare(records: list[SpanRecord]) -> list[_Prepared]:
    """What can be done before taking the lock: the JSON, the fields a search reads."""
    process_keys: dict[int, bytes] = {}  # the spans of a batch share their process
    prepared = []
    for span, process in records:
        key = process_keys.get(id(process))
        if key is None:
            key = process_keys[id(process)] = _json_bytes(process)
        fields = _fields(span)
        prepared.append(
            _Prepared(span["traceID"], span["spanID"], _json_bytes(span), key, process, fields, is_error(span))
        )
    return prepared


def _json_bytes(value: Json) -> bytes:
    """Compact JSON; never NaN or Infinity, which JSON does not have (ValueError)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def _fields(span: Json) -> SpanFields:
    return (
        sys.intern(str(span["operationName"])),
        int(span["startTime"]),
        int(span["duration"]),
        sys.intern(next((str(t["value"]) for t in span["tags"] if t["key"] == "span.kind"), "")),
        tuple(ref["spanID"] for ref in span["references"]),
    )


def _in_range(start: int, query: TraceQuery) -> bool:
    if query.start_us is not None and start < query.start_us:
        return False
    return query.end_us is None or start <= query.end_us


def _span_matches(span: _Span, query: TraceQuery) -> bool:
    """As Jaeger's stores match a search: one span of the trace meets every condition, its start in the time
    range included (a trace that began before the range, with a span of the service in it, is found: the
    Monitor's point links to the spans it counted, by their own start)."""
    if not _in_range(span.start, query):
        return False
    if query.service is not None and span.service != query.service:
        return False
    if query.operation and span.operation != query.operation:
        return False
    if query.min_duration_us is not None and span.duration < query.min_duration_us:
        return False
    if query.max_duration_us is not None and span.duration > query.max_duration_us:
        return False
    return not query.tags or _tags_match(span, query.tags)


def _tags_match(span: _Span, wanted: dict[str, str]) -> bool:
    full, process = span.record()
    values: dict[str, set[str]] = {}
    fields = full["tags"] + process["tags"] + [f for entry in full["logs"] for f in entry["fields"]]
    for tag in fields:
        values.setdefault(tag["key"], set()).add(tag_text(tag["value"]))
    return all(value in values.get(key, ()) for key, value in wanted.items())
