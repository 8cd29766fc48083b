"""Jaeger's query API over real jaeger-client UDP: every route and parameter, in Jaeger's exact shape."""

from __future__ import annotations

import re
import socket
import time

import pytest
import requests

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


# Jaeger's UI model, as Jaeger's `model/json` package declares it (field order as declared there; `flags`
# only when set). Every value's JSON type is stated: a key or a type the real Jaeger UI would not expect fails.
TRACE = {"traceID": str, "spans": list, "processes": dict, "warnings": (list, type(None))}
SPAN = {
    "traceID": str, "spanID": str, "flags": int, "operationName": str, "references": list, "startTime": int,
    "duration": int, "tags": list, "logs": list, "processID": str, "warnings": (list, type(None)),
}  # fmt: skip
REFERENCE = {"refType": str, "traceID": str, "spanID": str}
PROCESS = {"serviceName": str, "tags": list}
LOG = {"timestamp": int, "fields": list}
KEY_VALUE = {"key": str, "type": str, "value": (str, bool, int, float)}
REF_TYPES = {"CHILD_OF", "FOLLOWS_FROM"}
HEX_ID = re.compile(r"^[0-9a-f]{16}([0-9a-f]{16})?$")


def assert_shape(value: dict, model: dict, optional: frozenset[str] = frozenset()) -> None:
    """`value` has `model`'s keys in its order (the optional ones may be absent), each of its type."""
    assert list(value) == [key for key in model if key in value], (list(value), list(model))
    assert set(model) - set(value) <= optional, set(model) - set(value)
    for key, kind in model.items():
        if key in value:
            assert isinstance(value[key], kind), (key, value[key])


def assert_key_value(tag: dict) -> None:
    assert_shape(tag, KEY_VALUE)
    assert tag["type"] in TAG_TYPES
    expected = {"string": str, "bool": bool, "int64": (int, str), "float64": (float, int), "binary": str}
    assert isinstance(tag["value"], expected[tag["type"]]), tag


def test_shape_matches_jaegers_model(store):
    (trace,) = api(store, "/api/traces", service="github-proxy")["data"]
    assert_shape(trace, TRACE)
    assert HEX_ID.match(trace["traceID"])
    for span in trace["spans"]:
        assert_shape(span, SPAN, optional=frozenset({"flags"}))
        assert span["traceID"] == trace["traceID"] and HEX_ID.match(span["spanID"])
        for tag in span["tags"]:
            assert_key_value(tag)
        for log in span["logs"]:
            assert_shape(log, LOG)
            for field in log["fields"]:
                assert_key_value(field)
        for ref in span["references"]:
            assert_shape(ref, REFERENCE)
            assert ref["refType"] in REF_TYPES and HEX_ID.match(ref["spanID"])
        assert span["processID"] in trace["processes"]
    for process_id, process in trace["processes"].items():
        assert re.fullmatch(r"p\d+", process_id)
        assert_shape(process, PROCESS)
        for tag in process["tags"]:
            assert_key_value(tag)
    assert {p["serviceName"] for p in trace["processes"].values()} == {"gateway", "github-proxy"}
    spans = {span["operationName"]: span for span in trace["spans"]}
    assert spans["stats"]["logs"] and spans["stats"]["references"][0]["refType"] == "CHILD_OF"
    assert spans["contributors"]["tags"] and spans["contributors"]["references"] == []


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
