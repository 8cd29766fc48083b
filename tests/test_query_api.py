"""Jaeger's query API over real jaeger-client UDP: every route and parameter, in Jaeger's exact shape."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from tests.stage_loader import shared_file
from tests.udp_capture import close, jaeger_tracer
from workshop.collector import CollectorConfig, running_collector

TAG_TYPES = {"string", "bool", "int64", "float64", "binary"}


@pytest.fixture(scope="module")
def store():
    """A running store holding three traces from two services, sent over UDP by real tracers."""
    with running_collector(CollectorConfig(udp_port=0, http_port=0, max_traces=100)) as collector:
        gateway = jaeger_tracer("gateway", collector.udp_port)
        proxy = jaeger_tracer("github-proxy", collector.udp_port)
        with gateway.start_active_span("contributors") as root:
            root.span.set_tag("span.kind", "server")
            root.span.set_tag("github.repo", "pallets/flask")
            with gateway.start_active_span("call_github_proxy") as call:
                call.span.set_tag("span.kind", "client")
                with proxy.start_active_span("stats", child_of=call.span.context) as served:
                    served.span.set_tag("span.kind", "server")
                    served.span.log_kv({"event": "retry", "wait_s": 1.0})
                    time.sleep(0.12)
        with gateway.start_active_span("contributors") as failed:
            failed.span.set_tag("error", True)
        with gateway.start_active_span("health"):
            pass
        close(gateway)
        close(proxy)
        wait_for(collector.url, lambda: collector.store.trace_count() == 3)
        yield collector


def wait_for(url: str, condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for spans at {url}"
        time.sleep(0.05)


def api(store, path: str, status: int = 200, **params) -> dict:
    response = requests.get(store.url + path, params=params, timeout=5)
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["data", "total", "limit", "offset", "errors"]
    return body


def test_shape_matches_jaegers_reference(store):
    reference = json.loads(shared_file("reference/jaeger-ui-trace.json").read_text())
    (trace,) = api(store, "/api/traces", service="github-proxy")["data"]
    assert list(trace) == list(reference)
    reference_span_keys = set(reference["spans"][0])
    for span in trace["spans"]:
        assert set(span) - {"flags"} == reference_span_keys
        assert list(span)[:10] == [k for k in reference["spans"][0] if k in span]
        for tag in span["tags"]:
            assert list(tag) == ["key", "type", "value"] and tag["type"] in TAG_TYPES
        for log in span["logs"]:
            assert list(log) == list(reference["spans"][0]["logs"][0])
            for field in log["fields"]:
                assert list(field) == ["key", "type", "value"]
        for ref in span["references"]:
            assert list(ref) == list(reference["spans"][2]["references"][0])
        assert span["processID"] in trace["processes"]
    for process in trace["processes"].values():
        assert list(process) == list(reference["processes"]["p1"])
    assert {p["serviceName"] for p in trace["processes"].values()} == {"gateway", "github-proxy"}


def test_services_and_operations(store):
    body = api(store, "/api/services")
    assert body["data"] == ["gateway", "github-proxy"] and body["total"] == 2
    assert api(store, "/api/services/gateway/operations")["data"] == ["call_github_proxy", "contributors", "health"]
    kinds = api(store, "/api/operations", service="gateway", spanKind="server")["data"]
    assert kinds == [{"name": "contributors", "spanKind": "server"}]
    assert api(store, "/api/services/nobody/operations")["data"] == []


def test_search_parameters(store):
    def ops(**params) -> list[str]:
        return sorted(t["spans"][0]["operationName"] for t in api(store, "/api/traces", **params)["data"])

    assert ops(service="gateway") == ["contributors", "contributors", "health"]
    assert ops(service="gateway", operation="health") == ["health"]
    assert ops(service="gateway", tags='{"error":"true"}') == ["contributors"]
    assert ops(service="gateway", tags='{"github.repo":"pallets/flask"}') == ["contributors"]
    assert ops(service="gateway", tag="error:true") == ["contributors"]
    assert ops(service="gateway", minDuration="100ms") == ["contributors"]
    assert ops(service="gateway", minDuration="0.1s", maxDuration="10s") == ["contributors"]
    assert ops(service="gateway", maxDuration="50ms") == ["contributors", "health"]
    assert len(ops(service="gateway", limit=2)) == 2
    now_us = int(time.time() * 1_000_000)
    assert len(ops(service="gateway", start=now_us - 60_000_000, end=now_us)) == 3
    assert ops(service="gateway", start=now_us + 60_000_000) == []
    assert len(ops(service="gateway", lookback="1h")) == 3
    assert ops(service="gateway", lookback="1us", end=now_us - 3_600_000_000) == []


def test_trace_by_id_in_any_spelling(store):
    (trace,) = api(store, "/api/traces", service="github-proxy")["data"]
    trace_id = trace["traceID"]
    for spelling in [trace_id, trace_id.upper(), "0" * 16 + trace_id, trace_id.lstrip("0") or "0"]:
        (found,) = api(store, f"/api/traces/{spelling}")["data"]
        assert found == trace
    assert api(store, "/api/traces", traceID=trace_id)["data"] == [trace]


def test_dependencies(store):
    assert api(store, "/api/dependencies", endTs=int(time.time() * 1000), lookback=3_600_000)["data"] == [
        {"parent": "gateway", "child": "github-proxy", "callCount": 1}
    ]


@pytest.mark.parametrize(
    "path, params, message",
    [
        ("/api/traces", {}, "parameter 'service' is required"),
        ("/api/traces", {"service": "gateway", "minDuration": "fast"}, "parameter 'minDuration'"),
        ("/api/traces", {"service": "gateway", "maxDuration": "10 parsecs"}, "parameter 'maxDuration'"),
        ("/api/traces", {"service": "gateway", "minDuration": "2s", "maxDuration": "1s"}, "'maxDuration' must be"),
        ("/api/traces", {"service": "gateway", "limit": "many"}, "parameter 'limit'"),
        ("/api/traces", {"service": "gateway", "limit": "-1"}, "parameter 'limit'"),
        ("/api/traces", {"service": "gateway", "start": "yesterday"}, "parameter 'start'"),
        ("/api/traces", {"service": "gateway", "tags": "{error:true"}, "parameter 'tags'"),
        ("/api/traces", {"service": "gateway", "tags": "[1]"}, "parameter 'tags'"),
        ("/api/traces", {"service": "gateway", "tag": "novalue"}, "parameter 'tag'"),
        ("/api/traces", {"service": "gateway", "lookback": "a while"}, "parameter 'lookback'"),
        ("/api/traces", {"traceID": "xyz"}, "not a trace id"),
        ("/api/traces/not-hex", {}, "not a trace id"),
        ("/api/operations", {}, "parameter 'service' is required"),
        ("/api/dependencies", {"endTs": "soon"}, "parameter 'endTs'"),
    ],
)
def test_bad_parameters_are_400_with_a_message(store, path, params, message):
    body = api(store, path, 400, **params)
    assert body["data"] is None
    assert body["errors"][0]["code"] == 400 and message in body["errors"][0]["msg"]


def test_unknown_trace_and_route_are_404(store):
    assert api(store, "/api/traces/0123456789abcdef", 404)["errors"][0]["msg"].startswith("trace not found")
    assert api(store, "/api/nothing", 404)["errors"][0]["code"] == 404


def test_malformed_datagrams_are_counted_not_fatal(store):
    before = api_stats(store)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in [b"", b"junk", b"\x82\x21\x01\x09emitBatch\x1c\x1c", bytes(range(256)) * 10]:
            sock.sendto(junk, ("127.0.0.1", store.udp_port))
    wait_for(store.url, lambda: api_stats(store)["receiver"]["malformed"] >= before["receiver"]["malformed"] + 4)
    assert api(store, "/api/services")["data"] == ["gateway", "github-proxy"]  # still serving


def api_stats(store) -> dict:
    return requests.get(store.url + "/api/stats", timeout=5).json()


def test_a_burst_is_not_dropped():
    with running_collector(CollectorConfig(udp_port=0, http_port=0)) as collector:
        tracer = jaeger_tracer("burst", collector.udp_port, queue_size=5000)
        for n in range(2000):
            with tracer.start_active_span(f"span-{n % 7}"):
                pass
        close(tracer)
        wait_for(collector.url, lambda: collector.store.stats.spans_stored >= 2000, timeout=15)
        assert collector.receiver.stats.malformed == 0
        assert collector.receiver.stats.dropped_datagrams == 0
