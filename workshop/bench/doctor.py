"""What the trace doctor costs: `python -m workshop explain --recent 1000`, a new process as a learner types
it, against a trace store process holding 10,000 traces of 10 spans, over HTTP (the command's own path:
the searches, the JSON, the diagnosis, the terminal's output). Ingest never calls the doctor
(tests/test_layers.py: the receivers and the store do not import it)."""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from workshop.bench.processes import PYTHON, collector, stats
from workshop.lessons.stages import ROOT
from workshop.tracestore import model
from workshop.tracestore.store import TraceStore

BROKEN_EVERY = 10  # one request in this many lost its job's context: the worker's span is a trace of its own


def stored_traces(count: int, spans: int = 10, journal: Path | None = None) -> TraceStore:
    """A store holding `count` traces like lesson 5's (a gateway, a client call, a producer, a consumer), one
    request in BROKEN_EVERY with its job's context lost (two traces: 9 spans and the worker's 1)."""
    store = TraceStore(max_traces=count, journal=journal)
    start = int(time.time() * 1_000_000) - count * 10_000
    gateway, worker = model.process("gateway", []), model.process("worker", [])
    queue = model.string_tag("message_bus.destination", "contributors:jobs")
    n = 0
    while store.trace_count() < count:
        n += 1
        trace, root, at = f"{n:016x}", f"{n:08x}00000000", start + n * 10_000
        broken = n % BROKEN_EVERY == 0 and store.trace_count() + 2 <= count
        records = [
            (
                model.span(trace, root, "contributors", [], at, 9_000, [model.string_tag("span.kind", "server")], []),
                gateway,
            )
        ]
        for m in range(1, spans):
            kind = {1: "client", 2: "producer", 3: "consumer"}.get(m, "internal")
            tags = [model.string_tag("span.kind", kind), model.tag("http.status_code", "int64", 200)]
            tags += [queue] if kind in ("producer", "consumer") else []
            parent = f"{n:08x}{2:08x}" if kind == "consumer" else root
            span_id = f"{n:08x}{m:08x}"
            if kind == "consumer" and broken:  # the job carried no context: the worker began a trace
                lost = f"{n:08x}ffffffff"
                span = model.span(lost, span_id, f"step{m}", [], at + 300, 100, tags, [])
                store.add_spans([(span, worker)])
                continue
            refs = [model.reference("CHILD_OF", trace, parent)]
            span = model.span(trace, span_id, f"step{m}", refs, at + m * 100, 100 if m != 2 else 500, tags, [])
            records.append((span, worker if kind == "consumer" else gateway))
        store.add_spans(records)
    return store


def doctor_time(stored: int = 10_000, recent: int = 1_000, runs: int = 3) -> tuple[float, int]:
    """The median seconds of `runs` runs of `explain --recent <recent>` against a store process of `stored`
    traces, and how many groups of findings it printed."""
    with tempfile.TemporaryDirectory(prefix="workshop-bench-doctor-") as folder:
        journal = Path(folder) / "traces.jsonl"
        stored_traces(stored, journal=journal).close()
        with collector(max_traces=stored, journal=journal) as store:
            deadline = time.monotonic() + 120
            while stats(store.url).get("traces", 0) < stored and time.monotonic() < deadline:
                time.sleep(0.2)
            command = [PYTHON, "-m", "workshop", "explain", "--recent", str(recent), "--query-url", store.url]
            took = []
            for _ in range(runs):
                started = time.perf_counter()
                subprocess.run(command, cwd=ROOT, capture_output=True, check=False, timeout=60)
                took.append(time.perf_counter() - started)
            said = subprocess.run([*command, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return statistics.median(took), len(json.loads(said.stdout)["groups"])
