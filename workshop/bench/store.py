"""What the trace store can take: ingest over UDP (jaeger-client's compact Thrift) and over OTLP/HTTP
(one sender, as an OpenTelemetry SDK's batch exporter posts), loss at a steady rate, and memory."""

from __future__ import annotations

import random
import socket
import subprocess
import time

import requests
from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger.ttypes import Batch, Log, Process, Span, Tag, TagType
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from thrift.protocol.TCompactProtocol import TCompactProtocol
from thrift.Thrift import TMessageType
from thrift.transport.TTransport import TMemoryBuffer

from workshop.bench.processes import collector, stats
from workshop.ports import ENDPOINT

SPANS_PER_BATCH = 10  # jaeger-client's default batch size
STATS_URL = f"http://127.0.0.1:{ENDPOINT['fake_github'].default}/repos/pallets/flask/stats"  # the spans' http.url


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
                Tag(key="http.url", vType=TagType.STRING, vStr=STATS_URL),
                Tag(key="http.status_code", vType=TagType.LONG, vLong=200),
                Tag(key="github.attempt", vType=TagType.LONG, vLong=n),
            ]
            logs = [Log(timestamp=now, fields=[Tag(key="event", vType=TagType.STRING, vStr="retry")])]
            spans.append(
                Span(
                    traceIdLow=trace_id,
                    traceIdHigh=0,
                    spanId=rng.getrandbits(63),
                    parentSpanId=0,
                    operationName=f"operation-{n}",
                    flags=1,
                    startTime=now + n,
                    duration=1000,
                    tags=tags,
                    logs=logs,
                )
            )
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
    with collector(max_traces=len(payload)) as store, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for burst in range(bursts):
            started = time.monotonic()
            for datagram in payload[burst * per_burst : (burst + 1) * per_burst]:
                s.sendto(datagram, ("127.0.0.1", store.jaeger_compact_port))
            wait_stored(store.url, (burst + 1) * per_burst * SPANS_PER_BATCH, timeout=30)
            busy += time.monotonic() - started
        stored = stats(store.url)["store"]["spans_stored"]
    return stored / busy, len(payload) * SPANS_PER_BATCH - stored


def otlp_bodies(count: int, traces_per_body: int = 50, seed: int = 3) -> list[bytes]:
    """`count` OTLP/HTTP protobuf bodies of `traces_per_body` traces of 10 spans (500 spans: close to the
    SDK's batch of 512), the same spans as `datagrams`."""
    rng = random.Random(seed)
    now = time.time_ns()
    bodies = []
    for _ in range(count):
        spans = []
        for _ in range(traces_per_body):
            trace_id = rng.getrandbits(128).to_bytes(16, "big")
            for n in range(SPANS_PER_BATCH):
                spans.append(
                    trace_pb2.Span(
                        trace_id=trace_id,
                        span_id=rng.getrandbits(64).to_bytes(8, "big"),
                        name=f"operation-{n}",
                        kind=trace_pb2.Span.SPAN_KIND_CLIENT,
                        start_time_unix_nano=now + n * 1000,
                        end_time_unix_nano=now + n * 1000 + 1_000_000,
                        attributes=[
                            _attribute("http.url", STATS_URL),
                            _attribute("http.status_code", 200),
                            _attribute("github.attempt", n),
                        ],
                        events=[trace_pb2.Span.Event(time_unix_nano=now, name="retry")],
                    )
                )
        request = ExportTraceServiceRequest(
            resource_spans=[
                trace_pb2.ResourceSpans(
                    resource=resource_pb2.Resource(attributes=[_attribute("service.name", "bench")]),
                    scope_spans=[trace_pb2.ScopeSpans(spans=spans)],
                )
            ]
        )
        bodies.append(request.SerializeToString())
    return bodies


def _attribute(key: str, value: str | int) -> common_pb2.KeyValue:
    any_value = (
        common_pb2.AnyValue(string_value=value) if isinstance(value, str) else common_pb2.AnyValue(int_value=value)
    )
    return common_pb2.KeyValue(key=key, value=any_value)


def otlp_ingest_rate(bodies: int) -> tuple[float, int]:
    """Spans/s over OTLP/HTTP from one sender posting protobuf bodies one after the other on one
    connection, as an SDK's exporter does, timed to the last span stored. Spans lost."""
    payload = otlp_bodies(bodies)
    spans = bodies * 50 * SPANS_PER_BATCH
    with collector(max_traces=bodies * 50) as store, requests.Session() as session:
        endpoint = f"http://127.0.0.1:{store.otlp_http_port}/v1/traces"
        started = time.monotonic()
        for body in payload:
            session.post(endpoint, data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30)
        wait_stored(store.url, spans, timeout=30)
        busy = time.monotonic() - started
        stored = stats(store.url)["store"]["spans_stored"]
    return stored / busy, spans - stored


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
    with collector(max_traces=count) as store, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        send_paced(s, store.jaeger_compact_port, payload, spans_per_second)
        wait_stored(store.url, count * SPANS_PER_BATCH, timeout=30)
        stored = stats(store.url)["store"]["spans_stored"]
    return count * SPANS_PER_BATCH, count * SPANS_PER_BATCH - stored


def memory(max_traces: int, rounds: int = 6) -> tuple[list[float], float, int]:
    """The store's resident memory (MiB) after each round of `max_traces` new traces, its peak, and how
    many traces it holds at the end. Rounds alternate UDP and OTLP/HTTP. Bounded: later rounds evict
    as many traces as they add."""
    after = []
    with collector(max_traces=max_traces) as store, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        session = requests.Session()
        for round_ in range(1, rounds + 1):
            if round_ % 2:
                payload = datagrams(max_traces, seed=10 + round_)
                send_paced(s, store.jaeger_compact_port, payload, spans_per_second=20_000)
            else:
                for body in otlp_bodies(max_traces // 50, seed=10 + round_):
                    session.post(
                        f"http://127.0.0.1:{store.otlp_http_port}/v1/traces",
                        data=body,
                        timeout=30,
                        headers={"Content-Type": "application/x-protobuf"},
                    )
            wait_stored(store.url, max_traces * SPANS_PER_BATCH * round_, timeout=60)
            after.append(_memory_mib(store.child.pid, "VmRSS"))
        held = stats(store.url)["traces"]
        peak = _memory_mib(store.child.pid, "VmHWM")
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
