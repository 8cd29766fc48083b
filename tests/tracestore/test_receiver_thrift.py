"""Decoding jaeger-client's real UDP datagrams into Jaeger's UI model."""

from __future__ import annotations

import random
import socket

import pytest
from jaeger_client import SpanContext
from opentracing import follows_from
from thrift.protocol.TCompactProtocol import TCompactProtocol, TCompactProtocolAccelerated

from tests.support.udp_capture import close, jaeger_tracer, receive_all, udp_socket
from workshop.tracestore.model import assemble_trace, normalize_trace_id, trace_id_hex
from workshop.tracestore.receivers.thrift import DecodeError, decode_batch, spans_from_batch
from workshop.tracestore.receivers.udp import KERNEL_COUNTS, UdpReceiver
from workshop.tracestore.store import TraceStore


def capture(build) -> list[bytes]:
    with udp_socket() as sock:
        tracer = jaeger_tracer("decoder-test", sock.getsockname()[1])
        build(tracer)
        close(tracer)
        return receive_all(sock)


def records(datagrams: list[bytes]):
    return [record for datagram in datagrams for record in spans_from_batch(decode_batch(datagram))]


def test_tags_of_every_type_logs_and_process():
    def build(tracer):
        with tracer.start_active_span("typed") as scope:
            span = scope.span
            span.set_tag("a.string", "text")
            span.set_tag("a.bool", False)
            span.set_tag("a.int", 42)
            span.set_tag("a.big", 2**60)
            span.set_tag("a.negative", -7)
            span.set_tag("a.float", 2.5)
            span.log_kv({"event": "retry", "wait_s": 1.5, "attempt": 2, "ok": True})

    ((span, process),) = records(capture(build))
    assert span["operationName"] == "typed"
    tags = {tag["key"]: (tag["type"], tag["value"]) for tag in span["tags"]}
    assert tags["a.string"] == ("string", "text")
    assert tags["a.bool"] == ("bool", False)
    assert tags["a.int"] == ("int64", 42)
    assert tags["a.big"] == ("int64", str(2**60))  # beyond JavaScript's safe integers: a string, as in Jaeger
    assert tags["a.negative"] == ("int64", -7)
    assert tags["a.float"] == ("float64", 2.5)
    assert tags["sampler.type"] == ("string", "const")
    (log,) = span["logs"]
    assert {f["key"]: (f["type"], f["value"]) for f in log["fields"]} == {
        "event": ("string", "retry"),
        "wait_s": ("float64", 1.5),
        "attempt": ("int64", 2),
        "ok": ("bool", True),
    }
    assert span["startTime"] <= log["timestamp"] <= span["startTime"] + span["duration"]
    assert process["serviceName"] == "decoder-test"
    assert {t["key"] for t in process["tags"]} >= {"jaeger.version", "hostname", "ip"}


def test_references_child_of_and_follows_from():
    def build(tracer):
        with tracer.start_active_span("parent") as parent:
            with tracer.start_active_span("child"):
                pass
            tracer.start_span("later", references=[follows_from(parent.span.context)]).finish()

    spans = {span["operationName"]: span for span, _ in records(capture(build))}
    parent_id = spans["parent"]["spanID"]
    assert spans["parent"]["references"] == []
    assert spans["child"]["references"] == [
        {"refType": "CHILD_OF", "traceID": spans["parent"]["traceID"], "spanID": parent_id}
    ]
    assert spans["later"]["references"] == [
        {"refType": "FOLLOWS_FROM", "traceID": spans["parent"]["traceID"], "spanID": parent_id}
    ]


def test_64_bit_ids_are_unsigned_hex():
    big_trace, big_span = 0xF234567890ABCDEF, 0xFEDCBA0987654321
    parent = SpanContext(trace_id=big_trace, span_id=big_span, parent_id=None, flags=1)

    def build(tracer):
        tracer.start_span("child-of-a-big-id", child_of=parent).finish()

    ((span, _),) = records(capture(build))
    assert span["traceID"] == "f234567890abcdef"
    assert span["references"][0]["spanID"] == "fedcba0987654321"
    assert len(span["spanID"]) == 16 and int(span["spanID"], 16) >= 0


def test_trace_ids_are_normalized():
    assert trace_id_hex(0, 1) == "0000000000000001"
    assert trace_id_hex(1, 2) == "00000000000000010000000000000002"
    assert trace_id_hex(-1, -1) == "f" * 32
    assert normalize_trace_id("ABC") == "0000000000000abc"
    assert normalize_trace_id("0" * 16 + "0000000000000abc") == "0000000000000abc"
    for bad in ["", "xyz", "1" * 33, "12 34"]:
        with pytest.raises(ValueError):
            normalize_trace_id(bad)


def test_assembled_trace_numbers_processes():
    def build(tracer):
        with tracer.start_active_span("root"), tracer.start_active_span("child"):
            pass

    found = records(capture(build))
    trace = assemble_trace(found[0][0]["traceID"], found)
    assert list(trace) == ["traceID", "spans", "processes", "warnings"]
    assert [s["operationName"] for s in trace["spans"]] == ["root", "child"]
    assert {s["processID"] for s in trace["spans"]} == {"p1"}
    assert trace["processes"]["p1"]["serviceName"] == "decoder-test"


def test_malformed_datagrams_raise_decode_error():
    def build(tracer):
        with tracer.start_active_span("root") as scope:
            scope.span.log_kv({"event": "x", "message": "y" * 200})

    (good,) = capture(build)
    bad = [b"", b"\x00", b"hello world", good[: len(good) // 2], good[:-1], good[:5], b"\x82\x21\x01\x09emitBatc"]
    rng = random.Random(7)
    bad += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(200)]
    flipped = bytearray(good)
    for _ in range(200):
        position = rng.randrange(len(flipped))
        mutated = bytearray(flipped)
        mutated[position] ^= 1 << rng.randrange(8)
        bad.append(bytes(mutated))
    decoded_anyway = 0
    for datagram in bad:
        try:
            decode_batch(datagram)
            decoded_anyway += 1  # a flipped bit in a value still decodes: that is fine
        except DecodeError:
            pass
    assert decoded_anyway < len(bad)
    with pytest.raises(DecodeError):
        decode_batch(b"hello world")


def test_c_decoder_and_pure_python_decoder_agree(monkeypatch):
    def build(tracer):
        with tracer.start_active_span("root") as scope:
            scope.span.set_tag("n", 1)
            scope.span.set_tag("f", 0.5)
            scope.span.set_tag("b", True)
            scope.span.log_kv({"event": "x"})
            with tracer.start_active_span("child"):
                pass

    datagrams = capture(build)
    fast = records(datagrams)
    monkeypatch.setattr(TCompactProtocolAccelerated, "__init__", _pure_python_init)
    assert records(datagrams) == fast


def _pure_python_init(self, *args, **kwargs):
    TCompactProtocol.__init__(self, *args, **kwargs)
    self._fast_decode = None


def test_jaeger_client_binary_thrift_on_the_binary_port():
    """What jaeger-client for Node.js sends (Jaeger's 6832): the same batches in Thrift's binary protocol."""
    import time

    from jaeger_client import Tracer
    from jaeger_client.local_agent_net import LocalAgentSender
    from jaeger_client.reporter import Reporter
    from jaeger_client.sampler import ConstSampler
    from thrift.protocol.TBinaryProtocol import TBinaryProtocol

    from workshop.tracestore.collector import CollectorConfig, running_collector

    class BinaryReporter(Reporter):
        def getProtocol(self, transport):  # noqa: N802 (thrift's name)
            return TBinaryProtocol(transport)

    with running_collector(CollectorConfig.on_free_ports()) as collector:
        sender = LocalAgentSender("127.0.0.1", sampling_port=0, reporting_port=collector.jaeger_binary_port)
        tracer = Tracer("node-proxy", BinaryReporter(channel=sender, flush_interval=0.05), ConstSampler(True))
        with tracer.start_active_span("stats") as scope:
            scope.span.set_tag("component", "express")
            with tracer.start_active_span("github_request"):
                pass
        tracer.close()
        deadline = time.monotonic() + 5
        while collector.store.trace_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        trace = collector.store.get(f"{scope.span.trace_id:016x}")
        garbage = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        garbage.sendto(b"\x80\x01\x00\x04garbage", ("127.0.0.1", collector.jaeger_binary_port))
        garbage.close()
        collector.jaeger_binary_receiver.drain()
        stats = collector.statistics()["jaeger_binary"]
    assert trace is not None and sorted(s["operationName"] for s in trace["spans"]) == ["github_request", "stats"]
    assert trace["processes"]["p1"]["serviceName"] == "node-proxy"
    assert stats["spans"] == 2 and stats["malformed"] == 1


@pytest.mark.skipif(not KERNEL_COUNTS.exists(), reason="only Linux says what the kernel dropped (/proc/net/udp)")
def test_datagrams_the_kernel_dropped_are_counted_not_silently_lost():
    """A burst the socket's buffer cannot hold: what the kernel dropped is counted, so every datagram sent is
    either received or counted as dropped."""
    receiver = UdpReceiver(TraceStore(), "127.0.0.1", 0, "JAEGER_AGENT_PORT", receive_buffer=4096)
    sent = 400
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(sent):  # nothing reads yet: the buffer fills, then the kernel drops
            sender.sendto(b"\x00" * 300, ("127.0.0.1", receiver.port))
    receiver.start()
    try:
        assert receiver.drain()
        stats = receiver.stats
        assert stats.dropped_by_kernel > 0 and stats.datagrams + stats.dropped_by_kernel == sent
        assert stats.malformed == stats.datagrams  # what was received was read (and is garbage)
    finally:
        receiver.stop()
