"""Traces in memory, bounded (oldest evicted), optionally journaled to a JSON-lines file, searchable
the way Jaeger's query service searches: a trace matches when one of its spans matches every criterion."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from jaeger_client.thrift_gen.jaeger.ttypes import Batch

from workshop.jaeger_model import Json, assemble_trace, spans_from_batch, tag_text

log = logging.getLogger("workshop.trace_store")

SpanRecord = tuple[Json, Json]  # (Jaeger UI span without processID, its process)


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


@dataclass
class _Trace:
    spans: dict[str, SpanRecord] = field(default_factory=dict)

    @property
    def start(self) -> int:
        return min(span["startTime"] for span, _ in self.spans.values())

    @property
    def end(self) -> int:
        return max(span["startTime"] + span["duration"] for span, _ in self.spans.values())


class TraceStore:
    def __init__(self, max_traces: int = 10_000, max_spans_per_trace: int = 10_000, journal: Path | None = None):
        if max_traces < 1 or max_spans_per_trace < 1:
            raise ValueError("max_traces and max_spans_per_trace must be at least 1")
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self.stats = StoreStats()
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self._lock = threading.Lock()
        self._journal_path = journal
        self._journal = None
        if journal is not None:
            self._load_journal(journal)
            self._journal = journal.open("a", encoding="utf-8")

    # --- writing ---------------------------------------------------------------------------------

    def add_batch(self, batch: Batch) -> int:
        return self.add_spans(spans_from_batch(batch))

    def add_spans(self, records: list[SpanRecord], journal: bool = True) -> int:
        added = []
        with self._lock:
            for span, process in records:
                trace = self._traces.get(span["traceID"])
                if trace is None:
                    trace = self._traces[span["traceID"]] = _Trace()
                    if len(self._traces) > self.max_traces:
                        self._traces.popitem(last=False)
                        self.stats.traces_evicted += 1
                else:
                    self._traces.move_to_end(span["traceID"])
                if len(trace.spans) >= self.max_spans_per_trace and span["spanID"] not in trace.spans:
                    self.stats.spans_dropped += 1
                    continue
                trace.spans[span["spanID"]] = (span, process)
                self.stats.spans_stored += 1
                added.append((span, process))
            if journal and self._journal is not None and added:
                self._journal.write("".join(_journal_line(record) for record in added))
                self._journal.flush()
        return len(added)

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
                except (ValueError, KeyError, TypeError):
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
                out.write("".join(_journal_line(record) for record in trace.spans.values()))
        os.replace(temporary, path)

    # --- reading ---------------------------------------------------------------------------------

    def trace_count(self) -> int:
        with self._lock:
            return len(self._traces)

    def get(self, trace_id: str) -> Json | None:
        with self._lock:
            trace = self._traces.get(trace_id)
            return assemble_trace(trace_id, list(trace.spans.values())) if trace else None

    def services(self) -> list[str]:
        with self._lock:
            return sorted({p["serviceName"] for t in self._traces.values() for _, p in t.spans.values()})

    def operations(self, service: str) -> list[tuple[str, str]]:
        """(operation name, span kind) pairs seen for a service."""
        with self._lock:
            found = {
                (span["operationName"], _span_kind(span))
                for trace in self._traces.values()
                for span, process in trace.spans.values()
                if process["serviceName"] == service
            }
        return sorted(found)

    def find(self, query: TraceQuery) -> list[Json]:
        """Matching traces, newest first, at most `query.limit`."""
        with self._lock:
            if query.trace_ids:
                chosen = [(tid, self._traces[tid]) for tid in query.trace_ids if tid in self._traces]
            else:
                chosen = [(tid, t) for tid, t in self._traces.items() if _matches(t, query)]
                chosen.sort(key=lambda item: item[1].start, reverse=True)
                chosen = chosen[: query.limit]
            return [assemble_trace(tid, list(trace.spans.values())) for tid, trace in chosen]

    def dependencies(self, end_us: int | None = None, lookback_us: int | None = None) -> list[Json]:
        """Service-to-service call counts: a span whose parent belongs to another service is one call."""
        counts: dict[tuple[str, str], int] = {}
        with self._lock:
            for trace in self._traces.values():
                if end_us is not None and trace.start > end_us:
                    continue
                if end_us is not None and lookback_us is not None and trace.start < end_us - lookback_us:
                    continue
                for span, process in trace.spans.values():
                    for ref in span["references"]:
                        parent = trace.spans.get(ref["spanID"])
                        if parent is not None and parent[1]["serviceName"] != process["serviceName"]:
                            pair = (parent[1]["serviceName"], process["serviceName"])
                            counts[pair] = counts.get(pair, 0) + 1
                            break
        return [{"parent": p, "child": c, "callCount": n} for (p, c), n in sorted(counts.items())]


def _journal_line(record: SpanRecord) -> str:
    span, process = record
    return json.dumps({"span": span, "process": process}, separators=(",", ":")) + "\n"


def _span_kind(span: Json) -> str:
    return next((str(t["value"]) for t in span["tags"] if t["key"] == "span.kind"), "")


def _matches(trace: _Trace, query: TraceQuery) -> bool:
    if query.start_us is not None and trace.start < query.start_us:
        return False
    if query.end_us is not None and trace.start > query.end_us:
        return False
    return any(_span_matches(span, process, query) for span, process in trace.spans.values())


def _span_matches(span: Json, process: Json, query: TraceQuery) -> bool:
    if query.service is not None and process["serviceName"] != query.service:
        return False
    if query.operation and span["operationName"] != query.operation:
        return False
    if query.min_duration_us is not None and span["duration"] < query.min_duration_us:
        return False
    if query.max_duration_us is not None and span["duration"] > query.max_duration_us:
        return False
    if query.tags:
        values: dict[str, set[str]] = {}
        fields = span["tags"] + process["tags"] + [f for log in span["logs"] for f in log["fields"]]
        for tag in fields:
            values.setdefault(tag["key"], set()).add(tag_text(tag["value"]))
        return all(wanted in values.get(key, ()) for key, wanted in query.tags.items())
    return True
