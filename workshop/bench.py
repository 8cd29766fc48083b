"""`make bench`: what tracing costs the app, and what the trace store can take. A benchmark, not a test.

1. Request latency p50/p95 of each traced stage against step 1, on the same fake GitHub (no 202s, so
   the planted delay does not hide the cost of tracing), each stage a real process reporting over UDP.
2. The store's ingest rate (spans/s) when datagrams arrive as fast as one sender can send them, and
   how many spans it loses at a steady 5,000 spans/s.
3. The store's peak memory while it holds its maximum number of traces (and twice as many are sent).
4. The time from `make step3 ONCE=1` (venv ready) to the printed trace.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import requests
from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger.ttypes import Batch, Log, Process, Span, Tag, TagType
from rich.console import Console
from rich.table import Table
from thrift.protocol.TCompactProtocol import TCompactProtocol
from thrift.Thrift import TMessageType
from thrift.transport.TTransport import TMemoryBuffer

from workshop.lessons.stages import ROOT
from workshop.ports import free_port, wait_for_http, wait_for_tcp

PYTHON = sys.executable
QUIET = {"PYTHONWARNINGS": "ignore:This package is no longer supported:DeprecationWarning", "PYTHONUNBUFFERED": "1"}
SPANS_PER_BATCH = 10  # jaeger-client's default batch size


@dataclass
class Result:
    name: str
    value: str
    target: str
    met: bool | None

    def as_json(self) -> dict:
        return {"name": self.name, "value": self.value, "target": self.target, "met": self.met}


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], cwd: str | os.PathLike = ROOT) -> Iterator[subprocess.Popen]:
    child = subprocess.Popen(
        args, cwd=cwd, env={**os.environ, **QUIET, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_http(url: str, timeout: float = 20) -> None:
    if not wait_for_http(url, time.monotonic() + timeout):
        raise RuntimeError(f"{url} did not answer within {timeout} s")


def wait_tcp(port: int, timeout: float = 20) -> None:
    if not wait_for_tcp("127.0.0.1", port, time.monotonic() + timeout):
        raise RuntimeError(f"port {port} did not open within {timeout} s")


@contextlib.contextmanager
def collector(max_traces: int = 10_000) -> Iterator[tuple[subprocess.Popen, int, str]]:
    udp, http = free_port(socket.SOCK_DGRAM), free_port()
    args = [PYTHON, "-m", "workshop", "collector", "--udp-port", str(udp), "--http-port", str(http)]
    args += ["--otlp-http-port", str(free_port()), "--binary-udp-port", str(free_port(socket.SOCK_DGRAM))]
    args += ["--zipkin-port", str(free_port()), "--sampling-port", str(free_port())]
    with process(args + ["--max-traces", str(max_traces)], {}) as child:
        url = f"http://127.0.0.1:{http}"
        wait_http(url + "/api/services")
        yield child, udp, url


def stats(url: str) -> dict:
    return requests.get(url + "/api/stats", timeout=10).json()


# --- 1. latency -----------------------------------------------------------------------------------


def latency(requests_per_stage: int, github_latency: float = 0.0) -> dict[str, tuple[float, float]]:
    """p50 and p95 in ms for each stage's GET /contributors, against one fake GitHub and one store.

    The three stages run side by side and take turns, request by request, so whatever else the
    machine does at a moment slows all three alike.
    """
    stages = ["step1_monolith", "step2_spans", "step3_tags_logs"]
    github_port = free_port()
    fake = [PYTHON, "-m", "workshop", "fake-github", "--port", str(github_port), "--computing-calls", "0"]
    fake += ["--rate-limit", "100000000", "--latency", str(github_latency)]
    with contextlib.ExitStack() as stack:
        stack.enter_context(process(fake, {}))
        _, udp, _ = stack.enter_context(collector())
        github = f"http://127.0.0.1:{github_port}"
        wait_http(github + "/")
        urls = {}
        for stage in stages:
            port = free_port()
            env = {"APP_PORT": str(port), "GITHUB_API_URL": github, "JAEGER_AGENT_PORT": str(udp)}
            stack.enter_context(process([PYTHON, "app.py"], env, cwd=ROOT / stage))
            urls[stage] = f"http://127.0.0.1:{port}/contributors/pallets/flask"
        sessions = {stage: requests.Session() for stage in stages}
        for stage in stages:
            wait_tcp(int(urls[stage].split(":")[2].split("/")[0]))
            for _ in range(30):  # warm up
                sessions[stage].get(urls[stage], timeout=10)
        times: dict[str, list[float]] = {stage: [] for stage in stages}
        for _ in range(requests_per_stage):
            for stage in stages:
                started = time.perf_counter()
                sessions[stage].get(urls[stage], timeout=10).raise_for_status()
                times[stage].append((time.perf_counter() - started) * 1000)
    return {stage: (statistics.median(t), statistics.quantiles(t, n=20)[18]) for stage, t in times.items()}


# --- 2 and 3. the store -----------------------------------------------------------------------------


def encode(batch: Batch) -> bytes:
    """A datagram exactly as jaeger-client sends it: one emitBatch call in compact Thrift."""
    buffer = TMemoryBuffer()
    protocol = TCompactProtocol(buffer)
    protocol.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 0)
    Agent.emitBatch_args(batch=batch).write(protocol)
    protocol.writeMessageEnd()
    return buffer.getvalue()


def datagrams(count: int, spans_per_trace: int = SPANS_PER_BATCH, seed: int = 1) -> list[bytes]:
    """`count` datagrams of 10 realistic spans; each datagram is one trace."""
    rng = random.Random(seed)
    process_ = Process(serviceName="bench", tags=[Tag(key="hostname", vType=TagType.STRING, vStr="bench")])
    now = int(time.time() * 1_000_000)
    out = []
    for _ in range(count):
        trace_id = rng.getrandbits(63)
        spans = []
        for n in range(spans_per_trace):
            tags = [
                Tag(key="span.kind", vType=TagType.STRING, vStr="client"),
                Tag(key="http.url", vType=TagType.STRING, vStr="http://127.0.0.1:8482/repos/pallets/flask/stats"),
                Tag(key="http.status_code", vType=TagType.LONG, vLong=200),
                Tag(key="github.attempt", vType=TagType.LONG, vLong=n),
            ]
            logs = [Log(timestamp=now, fields=[Tag(key="event", vType=TagType.STRING, vStr="retry")])]
            spans.append(
                Span(traceIdLow=trace_id, traceIdHigh=0, spanId=rng.getrandbits(63), parentSpanId=0,
                     operationName=f"operation-{n}", flags=1, startTime=now + n, duration=1000, tags=tags, logs=logs)
            )  # fmt: skip
        out.append(encode(Batch(process=process_, spans=spans)))
    return out


def wait_stored(url: str, spans: int, timeout: float) -> float:
    """Seconds until the store has stored `spans` spans in all (or the timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if stats(url)["store"]["spans_stored"] >= spans:
            break
        time.sleep(0.02)
    return time.monotonic() - started


def ingest_rate(bursts: int, per_burst: int = 1_000) -> tuple[float, int]:
    """Spans/s the store decodes and stores: bursts of datagrams sent back to back (each burst fits in
    the socket's buffer), timed from the first datagram sent to the last span stored. Spans lost."""
    payload = datagrams(bursts * per_burst)
    busy = 0.0
    with collector(max_traces=len(payload)) as (_, udp, url), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for burst in range(bursts):
            started = time.monotonic()
            for datagram in payload[burst * per_burst : (burst + 1) * per_burst]:
                s.sendto(datagram, ("127.0.0.1", udp))
            wait_stored(url, (burst + 1) * per_burst * SPANS_PER_BATCH, timeout=30)
            busy += time.monotonic() - started
        stored = stats(url)["store"]["spans_stored"]
    return stored / busy, len(payload) * SPANS_PER_BATCH - stored


def send_paced(sock: socket.socket, port: int, payload: list[bytes], spans_per_second: int) -> None:
    interval = SPANS_PER_BATCH / spans_per_second
    started = time.monotonic()
    for n, datagram in enumerate(payload):
        delay = started + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendto(datagram, ("127.0.0.1", port))


def steady_rate(spans_per_second: int, seconds: float) -> tuple[int, int]:
    """Spans sent at a steady rate for `seconds`; how many the store lost."""
    count = int(spans_per_second * seconds / SPANS_PER_BATCH)
    payload = datagrams(count, seed=2)
    with collector(max_traces=count) as (_, udp, url), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        send_paced(s, udp, payload, spans_per_second)
        wait_stored(url, count * SPANS_PER_BATCH, timeout=30)
        stored = stats(url)["store"]["spans_stored"]
    return count * SPANS_PER_BATCH, count * SPANS_PER_BATCH - stored


def memory(max_traces: int, rounds: int = 3) -> tuple[list[float], float, int]:
    """The store's resident memory (MiB) after each round of `max_traces` new traces, its peak, and how
    many traces it holds at the end. Bounded: later rounds evict as many traces as they add."""
    after = []
    with collector(max_traces=max_traces) as (child, udp, url), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for round_ in range(1, rounds + 1):
            send_paced(s, udp, datagrams(max_traces, seed=10 + round_), spans_per_second=20_000)
            wait_stored(url, max_traces * SPANS_PER_BATCH * round_, timeout=60)
            after.append(_memory_mib(child.pid, "VmRSS"))
        held = stats(url)["traces"]
        peak = _memory_mib(child.pid, "VmHWM")
    return after, peak, held


def _memory_mib(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) from /proc; elsewhere `ps` gives the current size for both."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    output = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True).stdout
    return int(output.strip() or 0) / 1024


# --- 4. time to a printed trace ---------------------------------------------------------------------


def time_to_trace() -> tuple[float, float, int]:
    """Seconds from starting `run step3 --once` to the printed waterfall, and to its exit; exit code."""
    env = {
        "APP_PORT": str(free_port()),
        "FAKE_GITHUB_PORT": str(free_port()),
        "JAEGER_QUERY_PORT": str(free_port()),
        "JAEGER_AGENT_PORT": str(free_port(socket.SOCK_DGRAM)),
        "COLUMNS": "120",
    }
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
        lat = latency(count, github_latency)
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
    console.print("store: ingest rate ...")
    rate, lost = ingest_rate(3 if quick else 10)
    results.append(
        Result(
            "store ingest (bursts of 1,000 datagrams)",
            f"{rate:,.0f} spans/s, {lost} lost",
            "≥ 20,000 spans/s",
            rate >= 20_000,
        )
    )
    console.print("store: steady 5,000 spans/s ...")
    sent, lost = steady_rate(5_000, 2 if quick else 5)
    results.append(Result("store at 5,000 spans/s", f"{sent:,} sent, {lost} lost", "0 lost", lost == 0))
    max_traces = 2_000 if quick else 10_000
    console.print(f"store: memory with max-traces {max_traces} ...")
    after, peak, held = memory(max_traces)
    bounded = after[-1] <= after[-2] * 1.10 and held == max_traces
    rounds = ", ".join(f"{mib:.0f}" for mib in after)
    results.append(
        Result(
            f"store memory, max-traces {max_traces:,} (10 spans each)",
            f"{rounds} MiB after each {max_traces:,} new traces (peak {peak:.0f} MiB); holds {held:,}",
            "bounded",
            bounded,
        )
    )
    console.print("make step3 ONCE=1 ...")
    shown, total, code = time_to_trace()
    results.append(
        Result("make step3 ONCE=1 (venv ready)", f"trace printed after {shown:.2f} s, exit {code} after {total:.2f} s",
               "< 5 s to the trace", shown < 5 and code == 0)
    )  # fmt: skip

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
