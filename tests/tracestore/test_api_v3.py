"""Jaeger's API v3 over the store: OTLP JSON in {"result": ...}, read back by the OTLP receiver's own decoder
to prove it is OTLP, and the same trace the v1 API serves."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from workshop.tracestore.collector import CollectorConfig, running_collector
from workshop.tracestore.receivers.otlp import JSON, read_export, spans_from_export


@pytest.fixture(scope="module")
def held():
    """One trace sent by the OpenTelemetry SDK: a server span with an error, an event and a linked client."""
    with running_collector(CollectorConfig.on_free_ports()) as collector:
        provider = TracerProvider(resource=Resource.create({"service.name": "gateway"}))
        url = f"http://127.0.0.1:{collector.otlp_http_port}/v1/traces"
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=5)))
        tracer = provider.get_tracer("workshop.tests", "1.0")
        with tracer.start_as_current_span("contributors", kind=SpanKind.SERVER) as root:
            root.set_attribute("github.repo", "pallets/flask")
            root.add_event("retry", {"wait_s": 1.0})
            root.set_status(Status(StatusCode.ERROR, "GitHub failed"))
            with tracer.start_as_current_span("call", kind=SpanKind.CLIENT, links=[Link(root.get_span_context())]):
                time.sleep(0.01)
        provider.shutdown()
        trace_id = f"{root.get_span_context().trace_id:032x}"
        deadline = time.monotonic() + 5
        while (collector.store.get(trace_id) is None or len(collector.store.get(trace_id)["spans"]) < 2) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        yield collector, trace_id


def v3(collector, path: str, status: int = 200, **params) -> dict:
    answer = requests.get(collector.url + "/api/v3" + path, params=params, timeout=5)
    assert answer.status_code == status, answer.text
    return answer.json()


def test_services_and_operations(held):
    collector, _ = held
    assert v3(collector, "/services") == {"services": ["gateway"]}
    assert v3(collector, "/operations", service="gateway") == {
        "operations": [{"name": "call", "spanKind": "client"}, {"name": "contributors", "spanKind": "server"}]
    }
    assert v3(collector, "/operations", service="gateway", spanKind="server")["operations"] == [
        {"name": "contributors", "spanKind": "server"}
    ]


def test_a_trace_as_otlp_json_round_trips_through_the_otlp_decoder(held):
    collector, trace_id = held
    result = v3(collector, f"/traces/{trace_id}")["result"]
    (resource,) = result["resourceSpans"]
    assert resource["resource"]["attributes"][0] == {"key": "service.name", "value": {"stringValue": "gateway"}}
    (scope,) = resource["scopeSpans"]
    assert scope["scope"] == {"name": "workshop.tests", "version": "1.0"}
    spans = {s["name"]: s for s in scope["spans"]}
    root, call = spans["contributors"], spans["call"]
    assert root["traceId"] == trace_id and root["kind"] == 2 and call["kind"] == 3
    assert root["status"] == {"code": 2, "message": "GitHub failed"}
    assert root["events"][0]["name"] == "retry" and call["parentSpanId"] == root["spanId"]
    assert call["links"] == [{"traceId": trace_id, "spanId": root["spanId"]}]
    assert {"key": "github.repo", "value": {"stringValue": "pallets/flask"}} in root["attributes"]
    # OTLP as the spec writes it: our own receiver reads it back to the same Jaeger spans
    records, rejected = spans_from_export(read_export(json.dumps(result).encode(), JSON)[0])
    v1 = requests.get(f"{collector.url}/api/traces/{trace_id}", timeout=5).json()["data"][0]
    assert rejected == 0
    again = {r[0]["operationName"]: r[0] for r in records}
    for span in v1["spans"]:
        back = again[span["operationName"]]
        assert (back["spanID"], back["startTime"], back["duration"]) == (
            span["spanID"],
            span["startTime"],
            span["duration"],
        )
        assert sorted(t["key"] for t in back["tags"]) == sorted(t["key"] for t in span["tags"])


def test_search_with_rfc3339_times_and_both_spellings(held):
    collector, trace_id = held
    found = v3(
        collector, "/traces", **{"query.service_name": "gateway", "query.start_time_min": "2020-01-01T00:00:00Z"}
    )
    assert [s["traceId"] for r in found["result"]["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]]
    camel = v3(collector, "/traces", **{"query.serviceName": "gateway", "query.operationName": "contributors"})
    assert camel["result"]["resourceSpans"]
    future = v3(
        collector, "/traces", **{"query.service_name": "gateway", "query.start_time_min": "2999-01-01T00:00:00Z"}
    )
    assert future == {"result": {"resourceSpans": []}}


@pytest.mark.parametrize(
    "path, params, status, message",
    [
        ("/traces", {}, 400, "query.service_name is required"),
        ("/traces", {"query.service_name": "g", "query.start_time_min": "yesterday"}, 400, "RFC 3339"),
        ("/traces", {"query.service_name": "g", "query.start_time_min": "2026-01-01T00:00:00"}, 400, "time zone"),
        ("/traces", {"query.service_name": "g", "query.duration_min": "soon"}, 400, "not a duration"),
        ("/traces", {"query.service_name": "g", "query.num_traces": "-1"}, 400, "num_traces"),
        ("/traces", {"query.service_name": "g", "query.num_traces": "\u00b3"}, 400, "query.num_traces must be"),
        ("/traces", {"query.service_name": "g", "query.num_traces": "\u0663"}, 400, "query.num_traces must be"),
        ("/trace-summaries", {"query.service_name": "g", "query.searchDepth": "lots"}, 400, "query.searchDepth must"),
        (
            "/traces",
            {"query.service_name": "g", "query.duration_min": "2s", "query.duration_max": "1s"},
            400,
            "query.duration_max must be greater than or equal to query.duration_min",
        ),
        ("/traces/nothex", {}, 400, "not a trace id"),
        ("/traces/00000000000000000000000000abcdef", {}, 404, "trace not found"),
        ("/operations", {}, 400, "'service' is required"),
    ],
)
def test_bad_queries_in_jaegers_v3_error_shape(held, path, params, status, message):
    collector, _ = held
    error = v3(collector, path, status, **params)["error"]
    assert error["httpCode"] == status and message in error["message"]


def test_jaeger_ui_s_default_search_depth_is_accepted(held):
    """Jaeger UI v2.19+ asks for 1500 summaries unless told otherwise."""
    collector, _ = held
    found = v3(collector, "/trace-summaries", **{"query.service_name": "gateway", "query.searchDepth": "1500"})
    assert found["summaries"]


def test_trace_summaries_as_jaeger_ui_reads_them(held):
    """The shape Jaeger UI v2.19+ validates: 32-hex ids, decimal nanosecond strings, counts per service."""
    collector, trace_id = held
    params = {
        "query.service_name": "gateway",
        "query.span_name": "contributors",
        "query.num_traces": "20",
        "query.start_time_min": "2020-01-01T00:00:00.000Z",
        "query.attributes": '{"error":"true"}',
    }
    (found,) = v3(collector, "/trace-summaries", **params)["summaries"]
    assert found["traceId"] == trace_id and re.fullmatch(r"[0-9a-f]{32}", found["traceId"])
    assert (found["rootServiceName"], found["rootOperationName"]) == ("gateway", "contributors")
    assert int(found["maxEndTimeUnixNano"]) > int(found["minStartTimeUnixNano"]) > 0
    assert (found["spanCount"], found["errorSpanCount"], found["orphanSpanCount"]) == (2, 1, 0)
    assert found["services"] == [{"name": "gateway", "spanCount": 2, "errorSpanCount": 1}]
    none = v3(collector, "/trace-summaries", **{**params, "query.attributes": '{"error":"false"}'})
    assert none == {"summaries": []}
    bad = v3(collector, "/trace-summaries", 400, **{**params, "query.attributes": "[1]"})
    assert "query.attributes" in bad["error"]["message"]
