"""Run every benchmark and print one table (and bench-results.json)."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from workshop.bench import metrics as metrics_bench
from workshop.bench.doctor import doctor_time
from workshop.bench.latency import latency
from workshop.bench.processes import PYTHON
from workshop.bench.sdk import per_span_cost
from workshop.bench.store import ingest_rate, memory, otlp_ingest_rate, steady_rate
from workshop.lessons.stages import ROOT
from workshop.ports import ENDPOINTS, free_port


@dataclass
class Result:
    name: str
    value: str
    target: str
    met: bool | None

    def as_json(self) -> dict:
        return {"name": self.name, "value": self.value, "target": self.target, "met": self.met}


def time_to_trace() -> tuple[float, float, int]:
    """Seconds from starting `run step3 --once` to the printed waterfall, and to its exit; exit code."""
    kinds = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
    env = {endpoint.variable: str(free_port(kinds[endpoint.protocol])) for endpoint in ENDPOINTS}  # every port
    env["COLUMNS"] = "120"
    started = time.monotonic()
    child = subprocess.Popen(
        [PYTHON, "-m", "workshop", "run", "step3", "--once"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    shown = float("nan")
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("trace ") and "spans" in line:
            shown = time.monotonic() - started
    child.wait(timeout=60)
    return shown, time.monotonic() - started, child.returncode


# --- the report -------------------------------------------------------------------------------------


def run_benchmarks(quick: bool = False) -> list[Result]:
    console = Console()
    results: list[Result] = []
    for github_latency, count in [(0.0, 100 if quick else 500), (0.05, 50 if quick else 200)]:
        console.print(f"latency: {count} requests per stage, GitHub answering in {github_latency * 1000:g} ms ...")
        lat = latency(["step1_monolith", "step2_spans", "step3_tags_logs"], count, github_latency)
        base50, base95 = lat["step1_monolith"]
        for stage, (p50, p95) in lat.items():
            ratio = p50 / base50
            checked = stage == "step3_tags_logs"
            results.append(
                Result(
                    f"latency {stage}, GitHub {github_latency * 1000:g} ms",
                    f"p50 {p50:.2f} ms ({ratio:.2f}×), p95 {p95:.2f} ms ({p95 / base95:.2f}×)",
                    "≤ 1.10 × step 1 at p50" if checked else ("reference" if stage == "step1_monolith" else ""),
                    ratio <= 1.10 if checked else None,
                )
            )
    count = 100 if quick else 400
    console.print(f"latency: lessons 1, 6 and 8, every process of each, {count} requests each, GitHub at once ...")
    eight, untraced = "step8_opentelemetry", "step8_opentelemetry:untraced"
    lat = latency(["step1_monolith", "step6_baggage", eight, untraced], count)
    (base50, base95), (six50, six95) = lat["step1_monolith"], lat["step6_baggage"]
    for stage in ("step6_baggage", eight):
        p50, p95 = lat[stage]
        checked = stage == eight
        results.append(
            Result(
                f"latency {stage} (3 services, Redis), GitHub 0 ms",
                f"p50 {p50:.2f} ms ({p50 / base50:.2f}× lesson 1, {p50 / six50:.2f}× lesson 6), "
                f"p95 {p95:.2f} ms ({p95 / base95:.2f}×, {p95 / six95:.2f}×); lesson 1 p50 {base50:.2f} ms",
                "≤ 1.05 × lesson 1 at p50" if checked else "",
                p50 <= base50 * 1.05 if checked else None,
            )
        )
    (off50, off95), (on50, on95) = lat[untraced], lat[eight]
    results.append(
        Result(
            "latency step8_opentelemetry with OTEL_SDK_DISABLED=true (the same processes, no tracing)",
            f"p50 {off50:.2f} ms, p95 {off95:.2f} ms: "
            f"tracing adds {on50 / off50:.2f}× at p50, {on95 / off95:.2f}× at p95",
            "≤ 1.05 × at p50 (tracing's own cost)",
            on50 <= off50 * 1.05,
        )
    )
    console.print("the cost of one span to the thread that makes it ...")
    costs = per_span_cost(5_000 if quick else 20_000)
    results.append(
        Result(
            "one span (start, an attribute, end), in the app's thread",
            ", ".join(f"{sdk} {us:.1f} µs" for sdk, us in costs.items()),
            "",
            None,
        )
    )
    console.print("store: ingest rate ...")
    rate, lost = ingest_rate(3 if quick else 10)
    udp_rate = rate  # beside the trace doctor's figure: ingest does not call it
    results.append(
        Result(
            "store ingest, UDP compact Thrift (bursts of 1,000 datagrams)",
            f"{rate:,.0f} spans/s, {lost} lost",
            "≥ 20,000 spans/s",
            rate >= 20_000,
        )
    )
    console.print("store: OTLP/HTTP ingest rate ...")
    rate, lost = otlp_ingest_rate(20 if quick else 100)
    results.append(
        Result(
            "store ingest, OTLP/HTTP protobuf (one sender, 500 spans a request)",
            f"{rate:,.0f} spans/s, {lost} lost",
            "≥ 20,000 spans/s",
            rate >= 20_000,
        )
    )
    console.print("the trace doctor: explain --recent 1000 against a store of 10,000 traces ...")
    seconds, groups = doctor_time(runs=3 if quick else 5)
    results.append(
        Result(
            "trace doctor: `python -m workshop explain --recent 1000` (a new process) against a store process of "
            "10,000 traces of 10 spans, 1 request in 10 broken, over HTTP",
            f"{seconds:.2f} s (median; {groups} kind{'s' * (groups != 1)} of finding); ingest "
            f"{udp_rate:,.0f} spans/s (above) never calls it",
            "< 1 s; nothing at ingest",
            seconds < 1,
        )
    )
    console.print("span metrics: ingest with and without them, a day's query, their memory when full ...")
    without, with_metrics, shares = metrics_bench.ingest_cost(2_000 if quick else 5_000, 5 if quick else 7)
    cost = max(with_metrics) / max(without) - 1  # the best of each: what the machine's other work did not slow
    each = sorted(100 * (w / wo - 1) for w, wo in zip(with_metrics, without, strict=True))
    share = metrics_bench.median(shares)
    results.append(
        Result(
            f"store ingest (in-process, 10-span batches, CPU time) with span metrics, {len(without)} alternated rounds",
            f"{max(with_metrics):,.0f} spans/s with, {max(without):,.0f} without, best of each ({100 * cost:+.1f}%; "
            f"round by round {each[0]:+.1f}% to {each[-1]:+.1f}%); the span metrics' own calls: "
            f"{100 * share:.1f}% of the ingest's time (median)",
            "within 5% (the own calls' share: the rounds vary as much as that on a busy machine)",
            share <= 0.05,
        )
    )
    took = metrics_bench.median(metrics_bench.day_query())
    results.append(
        Result(
            "span metrics: Jaeger UI's p95 by operation over a day of 50 operations (1,441 points each), median of 5",
            f"{took * 1000:,.0f} ms",
            "< 50 ms",
            took < 0.05,
        )
    )
    spans = 300_000 if quick else 1_000_000
    held = metrics_bench.memory(spans)
    results.append(
        Result(
            f"span metrics' memory after {spans:,} spans of 1,000 operations at random over a day",
            f"{held['megabytes']:,.1f} MB, {held['cells']:,} buckets ({held['bytes_per_cell']:.0f} bytes each); "
            f"taken at {held['spans_per_second']:,.0f} spans/s; full, a new bucket a span: "
            f"{held['full_spans_per_second']:,.0f} spans/s",
            "bounded (200,000 buckets at most); no slower when full",
            held["cells"] <= 200_000 and held["full_spans_per_second"] > 100_000,
        )
    )
    console.print("store: steady 5,000 spans/s ...")
    sent, lost = steady_rate(5_000, 2 if quick else 5)
    results.append(Result("store at 5,000 spans/s", f"{sent:,} sent, {lost} lost", "0 lost", lost == 0))
    max_traces = 2_000 if quick else 10_000
    console.print(f"store: memory with max-traces {max_traces} ...")
    after, peak, held = memory(max_traces)
    # once full, a round adds (almost) nothing to what the same sender's round before it left
    bounded = all(after[n] <= after[n - 2] * 1.10 for n in range(4, len(after))) and held == max_traces
    rounds = ", ".join(f"{mib:.0f}" for mib in after)
    results.append(
        Result(
            f"store memory, max-traces {max_traces:,} (10 spans each)",
            f"{rounds} MiB after each {max_traces:,} new traces, UDP then OTLP (peak {peak:.0f} MiB); holds {held:,}",
            "bounded: rounds 5, 6 ≤ 1.10 × rounds 3, 4",
            bounded,
        )
    )
    console.print("make step3 ONCE=1 ...")
    shown, total, code = time_to_trace()
    results.append(
        Result(
            "make step3 ONCE=1 (venv ready)",
            f"trace printed after {shown:.2f} s, exit {code} after {total:.2f} s",
            "< 5 s to the trace",
            shown < 5 and code == 0,
        )
    )

    table = Table(title="make bench", title_justify="left")
    for column in ["measure", "value", "target", ""]:
        table.add_column(column)
    for result in results:
        mark = "" if result.met is None else ("[green]met[/green]" if result.met else "[red]missed[/red]")
        table.add_row(result.name, result.value, result.target, mark)
    console.print(table)
    machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}"
    console.print(f"machine: {machine}; self rusage max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
    (ROOT / "bench-results.json").write_text(
        json.dumps({"machine": machine, "results": [r.as_json() for r in results]}, indent=2) + "\n"
    )
    return results
