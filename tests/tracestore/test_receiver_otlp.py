"""OTLP over HTTP into the store: the OpenTelemetry SDK's own exporter, OTLP JSON with hex ids, gzip, chunked
bodies, and bad input, each answered as the OTLP spec says; spans mapped to Jaeger's model as Jaeger does."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from workshop.tracestore.collector import CollectorConfig, running_collector
from workshop.tracestore.receivers.otlp import PROTOBUF

TRACE_ID = "5b8aa5a2d2c872e8321cf37308d69df2"
ROOT, CHILD = "051581bf3cb55c13", "1234567890abcdef"


@pytest.fixture
def collector():
    with running_collector(CollectorConfig.on_free_ports()) as running:
        running.otlp_url = f"http://127.0.0.1:{running.otlp_http_port}/v1/traces"
        yield running


def tags(span: dict) -> dict:
    return {t["key"]: (t["type"], t["value"]) for t in span["tags"]}


def wait_for_spans(collector, trace_id: str, count: int) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        trace = collector.store.get(trace_id)
        if trace and len(trace["spans"]) >= count:
            return trace
        time.sleep(0.05)
    raise AssertionError(f"trace {trace_id} did not reach {count} spans")


def test_the_opentelemetry_sdk_exporter_into_the_store(collector):
    provider = TracerProvider(resource=Resource.create({"service.name": "gateway", "deployment.environment": "dev"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.otlp_url, timeout=5)))
    tracer = provider.get_tracer("workshop.tests", "1.2.3")
    with tracer.start_as_current_span("contributors", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.response.status_code", 502)
        root.set_attribute("github.repos", ["a/b", "c/d"])
        root.set_attribute("ratio", 0.5)
        root.set_attribute("cached", False)
        root.add_event("retry", {"wait_s": 1.0})
        root.set_status(Status(StatusCode.ERROR, "GitHub failed"))
        with tracer.start_as_current_span(
            "call_github_proxy", kind=SpanKind.CLIENT, links=[Link(root.get_span_context())]
        ):
            pass
    provider.shutdown()
    trace_id = f"{root.get_span_context().trace_id:032x}"
    trace = wait_for_spans(collector, trace_id, 2)
    spans = {s["operationName"]: s for s in trace["spans"]}
    (process,) = trace["processes"].values()
    assert process["serviceName"] == "gateway"
    process_tags = {t["key"]: t["value"] for t in process["tags"]}
    assert process_tags["deployment.environment"] == "dev" and process_tags["telemetry.sdk.language"] == "python"
    root_tags = tags(spans["contributors"])
    assert root_tags["span.kind"] == ("string", "server")
    assert root_tags["http.response.status_code"] == ("int64", 502)
    assert root_tags["github.repos"] == ("string", '["a/b","c/d"]')
    assert root_tags["ratio"] == ("float64", 0.5) and root_tags["cached"] == ("bool", False)
    assert root_tags["error"] == ("bool", True) and root_tags["otel.status_code"] == ("string", "ERROR")
    assert root_tags["otel.status_description"] == ("string", "GitHub failed")
    assert root_tags["otel.scope.name"] == ("string", "workshop.tests")
    assert root_tags["otel.scope.version"] == ("string", "1.2.3")
    (log,) = spans["contributors"]["logs"]
    assert [(f["key"], f["value"]) for f in log["fields"]] == [("event", "retry"), ("wait_s", 1.0)]
    child = spans["call_github_proxy"]
    assert tags(child)["span.kind"] == ("string", "client")
    assert [r["refType"] for r in child["references"]] == ["CHILD_OF", "FOLLOWS_FROM"]
    assert child["references"][0]["spanID"] == spans["contributors"]["spanID"]
    stats = requests.get(collector.url + "/api/stats", timeout=5).json()["otlp_http"]
    assert stats["spans"] == 2 and stats["by_content_type"] == {"application/x-protobuf": 2}


def otlp_json(trace_id: str = TRACE_ID, **span: object) -> dict:
    """An export as OpenTelemetry JS sends it: OTLP JSON with hex ids."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "github-proxy"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "express"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": ROOT,
                                "name": "GET /stats",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "traceState": "vendor=x",
                                **span,
                            },
                            {
                                "traceId": trace_id,
                                "spanId": CHILD,
                                "parentSpanId": ROOT,
                                "name": "github_request",
                                "kind": 3,
                                "startTimeUnixNano": "1700000000010000000",
                                "endTimeUnixNano": "1700000000200000000",
                                "attributes": [{"key": "attempt", "value": {"intValue": "2"}}],
                            },
                        ],
                    }
                ],
            }
        ]
    }


def test_otlp_json_with_hex_ids_gzip_and_chunked(collector):
    body = json.dumps(otlp_json()).encode()
    answer = requests.post(collector.otlp_url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert answer.status_code == 200 and answer.json() == {}
    trace = collector.store.get(TRACE_ID)
    spans = {s["operationName"]: s for s in trace["spans"]}
    assert spans["GET /stats"]["duration"] == 250_000 and spans["GET /stats"]["startTime"] == 1_700_000_000_000_000
    assert tags(spans["GET /stats"])["w3c.tracestate"] == ("string", "vendor=x")
    assert tags(spans["github_request"])["attempt"] == ("int64", 2)
    assert tags(spans["github_request"])["span.kind"] == ("string", "client")
    assert spans["github_request"]["references"][0]["spanID"] == ROOT

    other = "00000000000000001111111111111111"  # a zero high half: jaeger-client's 64-bit id
    squeezed = gzip.compress(json.dumps(otlp_json(other)).encode())
    chunks = (squeezed[i : i + 100] for i in range(0, len(squeezed), 100))  # a generator: sent chunked
    answer = requests.post(
        collector.otlp_url,
        data=chunks,
        timeout=5,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200
    assert collector.store.get("1111111111111111") is not None


def test_a_double_of_nan_or_infinity_is_kept_as_a_string_and_the_export_stored(collector):
    """JSON has no NaN: the real SDK's protobuf export with such attributes was a 500 and all its spans lost."""
    provider = TracerProvider(resource=Resource.create({"service.name": "floats"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.otlp_url, timeout=5)))
    with provider.get_tracer("t").start_as_current_span("odd numbers") as span:
        span.set_attributes({"nan": float("nan"), "up": float("inf"), "down": float("-inf"), "fine": 0.5})
        trace_id = f"{span.get_span_context().trace_id:032x}"
    provider.shutdown()
    trace = collector.store.get(trace_id)
    assert trace is not None
    (stored,) = trace["spans"]
    assert tags(stored)["nan"] == ("string", "NaN") and tags(stored)["up"] == ("string", "Infinity")
    assert tags(stored)["down"] == ("string", "-Infinity") and tags(stored)["fine"] == ("float64", 0.5)
    assert requests.get(collector.url + f"/api/traces/{trace_id}", timeout=5).status_code == 200


def test_protobuf_gets_a_protobuf_answer_with_partial_success_for_spans_without_ids(collector):
    export = ExportTraceServiceRequest()
    spans = export.resource_spans.add().scope_spans.add().spans
    good = spans.add(trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(ROOT), name="ok")
    good.start_time_unix_nano, good.end_time_unix_nano = 1, 2_000
    spans.add(trace_id=bytes(16), span_id=bytes.fromhex(CHILD), name="no trace id")
    answer = requests.post(
        collector.otlp_url,
        data=export.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
        timeout=5,
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    trace = collector.store.get(TRACE_ID)
    assert [s["operationName"] for s in trace["spans"]] == ["ok"]
    assert trace["processes"]["p1"]["serviceName"] == "unknown_service"


@pytest.mark.parametrize(
    "body, headers, status, message",
    [
        (b"\x0a\xff\xff", {"Content-Type": "application/x-protobuf"}, 400, "not an OTLP protobuf"),
        (b"{not json", {"Content-Type": "application/json"}, 400, "not OTLP JSON"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "OTLP JSON is an object"),
        (b'{"resourceSpans": "x"}', {"Content-Type": "application/json"}, 400, "not OTLP JSON"),
        (b"[" * 100_000, {"Content-Type": "application/json"}, 400, "not OTLP JSON"),
        (b"spans", {"Content-Type": "text/plain"}, 415, "OTLP/HTTP is application/x-protobuf or application/json"),
        (b"x", {"Content-Type": "application/json", "Content-Encoding": "br"}, 415, "not supported"),
        (b"not gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 400, "not gzip"),
        (b"\x00" * (10 * 1024 * 1024), {"Content-Type": "application/x-protobuf"}, 413, "larger than 8 MiB"),
        (
            gzip.compress(b" " * (20 * 1024 * 1024)),
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            413,
            "larger than 8 MiB",
        ),
    ],
    ids=[
        "truncated-protobuf",
        "bad-json",
        "json-list",
        "json-shape",
        "json-deep",
        "content-type",
        "encoding",
        "bad-gzip",
        "10MB",
        "gzip-bomb",
    ],
)
def test_bad_exports_get_a_clear_answer_and_the_store_keeps_serving(collector, body, headers, status, message):
    answer = requests.post(collector.otlp_url, data=body, headers=headers, timeout=10)
    assert answer.status_code == status and message in answer.json()["message"], answer.text
    ok = requests.post(
        collector.otlp_url, data=json.dumps(otlp_json()), timeout=5, headers={"Content-Type": "application/json"}
    )
    assert ok.status_code == 200 and collector.store.get(TRACE_ID) is not None
    stats = requests.get(collector.url + "/api/stats", timeout=5).json()["otlp_http"]
    assert stats["bad_requests"] == 1


def test_base64_ids_are_read_too_and_other_routes_say_what_the_receiver_takes(collector):
    export = otlp_json()
    for span in export["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in span:
                span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    answer = requests.post(collector.otlp_url, json=export, timeout=5)
    assert answer.status_code == 200 and len(collector.store.get(TRACE_ID)["spans"]) == 2
    elsewhere = requests.get(collector.otlp_url, timeout=5)
    assert elsewhere.status_code == 405 and "POST /v1/traces" in elsewhere.text


def test_a_raw_socket_that_sends_half_a_request_does_not_hang_the_receiver(collector):
    with socket.create_connection(("127.0.0.1", collector.otlp_http_port), timeout=5) as half:
        half.sendall(b"POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 99\r\n\r\n{")
        answer = requests.post(collector.otlp_url, json=otlp_json(), timeout=5)  # another client, meanwhile
    assert answer.status_code == 200


def test_the_counts_agree_with_the_store_under_concurrent_exports(collector):
    """Many exporters at once: every span stored is counted, in the receiver's figures and the store's."""

    def export(n: int) -> int:
        span = {"name": "s", "startTimeUnixNano": "1", "endTimeUnixNano": "2", "traceId": f"{n:032x}"}
        spans = [{**span, "spanId": f"{m + 1:016x}"} for m in range(20)]
        body = json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]})
        headers = {"Content-Type": "application/json"}
        return requests.post(collector.otlp_url, data=body, headers=headers, timeout=10).status_code

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: a race shows at once, not in a week
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            assert set(pool.map(export, range(1, 241))) == {200}
    finally:
        sys.setswitchinterval(interval)
    figures = requests.get(collector.url + "/api/stats", timeout=5).json()
    assert figures["store"]["spans_stored"] == 240 * 20
    assert figures["otlp_http"]["spans"] == 240 * 20 and figures["otlp_http"]["requests"] == 240


def test_a_string_that_is_not_utf8_costs_no_span_of_the_export(collector):
    """protobuf refuses a whole message for one string that is not UTF-8; the store keeps every span, the bad
    bytes replaced with U+FFFD, and counts it (an exporter that does not check, unlike Go's, sends such bytes)."""
    export = ExportTraceServiceRequest()
    resource = export.resource_spans.add()
    resource.resource.attributes.add(key="service.name").value.string_value = "edge"
    scope = resource.scope_spans.add()
    for n in (1, 2, 3):
        span = scope.spans.add(trace_id=bytes([n]) * 16, span_id=bytes([n]) * 8, name="GET", kind=2)
        span.attributes.add(key="url.path").value.string_value = "/contributors/pallets/PLACEHOLDER" if n == 2 else "/"
    body = export.SerializeToString().replace(b"PLACEHOLDER", b"fl\xc3ask\xff\xffxxx")  # the same length
    answer = requests.post(collector.otlp_url, data=body, headers={"Content-Type": PROTOBUF}, timeout=5)
    assert answer.status_code == 200
    assert all(collector.store.get(f"{n:02x}" * 16) for n in (1, 2, 3))
    (stored,) = collector.store.get("02" * 16)["spans"]
    assert tags(stored)["url.path"] == ("string", "/contributors/pallets/fl\ufffdask\ufffd\ufffdxxx")
    assert collector.statistics()["otlp_http"]["not_utf8_strings"] == 1
    page = requests.get(collector.url + "/receivers", timeout=5).text
    assert "1 strings not UTF-8" in page
    broken = requests.post(collector.otlp_url, data=b"\x0a\xff", headers={"Content-Type": PROTOBUF}, timeout=5)
    assert broken.status_code == 400 and "not an OTLP protobuf" in broken.json()["message"]
