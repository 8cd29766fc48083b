"""Traces in memory, bounded (oldest evicted), optionally journaled to a JSON-lines file, searchable
the way Jaeger's query service searches: a trace matches when one of its spans matches every criterion.

Each span is kept as its compact JSON (about a fifth of the memory of the same span as Python dicts)
beside the few fields a search looks at first; a span's tags and logs are parsed only when a query
asks about tags.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from jaeger_client.thrift_gen.jaeger.ttypes import Batch

from workshop.jaeger_model import Json, assemble_trace, spans_from_batch, tag_text

log = logging.getLogger("workshop.trace_store")

SpanRecord = tuple[Json, Json]  # (Jaeger UI span without processID, its process)
MAX_PROCESSES = 10_000  # distinct processes remembered before those no stored span uses are forgotten


@dataclass
class TraceQuery:
    service: str | None = None
    operation: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    min_duration_us: int | None = None
    max_duration_us: int | None = None
    start_us: int | None = None
    end_us: int | None = None
    limit: int = 100
    trace_ids: list[str] = field(default_factory=list)


@dataclass
class StoreStats:
    spans_stored: int = 0
    spans_dropped: int = 0  # beyond a trace's span limit
    traces_evicted: int = 0
    journal_lines_skipped: int = 0


class _Span(NamedTuple):
    blob: bytes  # the span's JSON
    process: str  # key into TraceStore._processes
    service: str
    operation: str
    start: int
    duration: int
    kind: str
    parents: tuple[str, ...]  # span ids it references

    def record(self, processes: dict[str, Json]) -> SpanRecord:
        return json.loads(self.blob), processes[self.process]


@dataclass
class _Trace:
    spans: dict[str, _Span] = field(default_factory=dict)
    start: int = 0

    def add(self, span_id: str, span: _Span) -> None:
        self.start = min(self.start, span.start) if self.spans else span.start
        self.spans[span_id] = span


class TraceStore:
    def __init__(self, max_traces: int = 10_000, max_spans_per_trace: int = 10_000, journal: Path | None = None):
        if max_traces < 1 or max_spans_per_trace < 1:
            raise ValueError("max_traces and max_spans_per_trace must be at least 1")
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self.stats = StoreStats()
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self._processes: dict[str, Json] = {}  # by their JSON; shared by every span of a process
        self._lock = threading.Lock()
        self._journal = None
        if journal is not None:
            self._load_journal(journal)
            self._journal = journal.open("a", encoding="utf-8")

    # --- writing ---------------------------------------------------------------------------------

    def add_batch(self, batch: Batch) -> int:
        return self.add_spans(spans_from_batch(batch))

    def add_spans(self, records: list[SpanRecord], journal: bool = True) -> int:
        prepared = [(span, _compact(span), _compact(process), process) for span, process in records]
        lines = []
        with self._lock:
            for span, blob, process_key, process in prepared:
                trace_id, span_id = span["traceID"], span["spanID"]
                trace = self._traces.get(trace_id)
                if trace is None:
                    trace = self._traces[trace_id] = _Trace()
                    if len(self._traces) > self.max_traces:
                        self._traces.popitem(last=False)
                        self.stats.traces_evicted += 1
                else:
                    self._traces.move_to_end(trace_id)
                if len(trace.spans) >= self.max_spans_per_trace and span_id not in trace.spans:
                    self.stats.spans_dropped += 1
                    continue
                self._processes.setdefault(process_key, process)
                trace.add(span_id, _index(span, blob, process_key, process["serviceName"]))
                self.stats.spans_stored += 1
                lines.append(f'{{"span":{blob},"process":{process_key}}}\n')
            if len(self._processes) > MAX_PROCESSES:
                self._forget_unused_processes()
            if journal and self._journal is not None and lines:
                self._journal.write("".join(lines))
                self._journal.flush()
        return len(lines)

    def _forget_unused_processes(self) -> None:
        used = {span.process for trace in self._traces.values() for span in trace.spans.values()}
        self._processes = {key: value for key, value in self._processes.items() if key in used}

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    def _load_journal(self, path: Path) -> None:
        if not path.exists():
            return
        records = []
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                    span, process = entry["span"], entry["process"]
                    if not all(isinstance(x, str) for x in (span["traceID"], span["spanID"], process["serviceName"])):
                        raise TypeError("ids and service name must be strings")
                    _index(span, b"", "", "")  # every field a search needs is there
                except (ValueError, KeyError, TypeError, AttributeError):
                    self.stats.journal_lines_skipped += 1
                    continue
                records.append((span, process))
        self.add_spans(records, journal=False)
        if self.stats.journal_lines_skipped:
            log.warning("skipped %d unreadable lines of %s", self.stats.journal_lines_skipped, path)
        self._compact_journal(path)

    def _compact_journal(self, path: Path) -> None:
        """Rewrite the journal with what the bound kept, so the file does not grow forever."""
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for trace in self._traces.values():
                for span in trace.spans.values():
                    out.write(f'{{"span":{span.blob.decode()},"process":{span.process}}}\n')
        os.replace(temporary, path)

    # --- reading ---------------------------------------------------------------------------------

    def trace_count(self) -> int:
        with self._lock:
            return len(self._traces)

    def get(self, trace_id: str) -> Json | None:
        with self._lock:
            trace = self._traces.get(trace_id)
            return self._assemble(trace_id, trace) if trace else None

    def _assemble(self, trace_id: str, trace: _Trace) -> Json:
        return assemble_trace(trace_id, [span.record(self._processes) for span in trace.spans.values()])

    def services(self) -> list[str]:
        with self._lock:
            return sorted({span.service for trace in self._traces.values() for span in trace.spans.values()})

    def operations(self, service: str) -> list[tuple[str, str]]:
        """(operation name, span kind) pairs seen for a service."""
        with self._lock:
            found = {
                (span.operation, span.kind)
                for trace in self._traces.values()
                for span in trace.spans.values()
                if span.service == service
            }
        return sorted(found)

    def find(self, query: TraceQuery) -> list[Json]:
        """Matching traces, newest first, at most `query.limit`."""
        with self._lock:
            if query.trace_ids:
                chosen = [(tid, self._traces[tid]) for tid in query.trace_ids if tid in self._traces]
            else:
                chosen = [(tid, t) for tid, t in self._traces.items() if self._matches(t, query)]
                chosen.sort(key=lambda item: item[1].start, reverse=True)
                chosen = chosen[: query.limit]
            return [self._assemble(tid, trace) for tid, trace in chosen]

    def dependencies(self, end_us: int | None = None, lookback_us: int | None = None) -> list[Json]:
        """Service-to-service call counts: a span whose parent belongs to another service is one call."""
        counts: dict[tuple[str, str], int] = {}
        with self._lock:
            for trace in self._traces.values():
                if end_us is not None and trace.start > end_us:
                    continue
                if end_us is not None and lookback_us is not None and trace.start < end_us - lookback_us:
                    continue
                for span in trace.spans.values():
                    parent = next((trace.spans[p] for p in span.parents if p in trace.spans), None)
                    if parent is not None and parent.service != span.service:
                        pair = (parent.service, span.service)
                        counts[pair] = counts.get(pair, 0) + 1
        return [{"parent": p, "child": c, "callCount": n} for (p, c), n in sorted(counts.items())]

    def _matches(self, trace: _Trace, query: TraceQuery) -> bool:
        if query.start_us is not None and trace.start < query.start_us:
            return False
        if query.end_us is not None and trace.start > query.end_us:
            return False
        return any(self._span_matches(span, query) for span in trace.spans.values())

    def _span_matches(self, span: _Span, query: TraceQuery) -> bool:
        if query.service is not None and span.service != query.service:
            return False
        if query.operation and span.operation != query.operation:
            return False
        if query.min_duration_us is not None and span.duration < query.min_duration_us:
            return False
        if query.max_duration_us is not None and span.duration > query.max_duration_us:
            return False
        if query.tags:
            full, process = span.record(self._processes)
            values: dict[str, set[str]] = {}
            fields = full["tags"] + process["tags"] + [f for entry in full["logs"] for f in entry["fields"]]
            for tag in fields:
                values.setdefault(tag["key"], set()).add(tag_text(tag["value"]))
            return all(wanted in values.get(key, ()) for key, wanted in query.tags.items())
        return True


def _compact(value: Json) -> str:
    return json.dumps(value, separators=(",", ":"))


def _index(span: Json, blob: str | bytes, process_key: str, service: str) -> _Span:
    return _Span(
        blob=blob.encode() if isinstance(blob, str) else blob,
        process=process_key,
        service=service,
        operation=str(span["operationName"]),
        start=int(span["startTime"]),
        duration=int(span["duration"]),
        kind=next((str(t["value"]) for t in span["tags"] if t["key"] == "span.kind"), ""),
        parents=tuple(ref["spanID"] for ref in span["references"]),
    )
