"""Jaeger's query API over real jaeger-client UDP: every route and parameter, in Jaeger's exact shape."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
import requests
from jaeger_client.thrift_gen.agent import Agent
from jaeger_client.thrift_gen.jaeger.ttypes import Batch, Log, Process, Span, Tag, TagType
from thrift.protocol.TCompactProtocol import TCompactProtocol
from thrift.Thrift import TMessageType
from thrift.transport.TTransport import TMemoryBuffer

from tests.support.udp_capture import close, jaeger_tracer
from workshop.tracestore.app import create_app
from workshop.tracestore.collector import CollectorConfig, running_collector
from workshop.tracestore.store import TraceStore

TAG_TYPES = {"string", "bool", "int64", "float64", "binary"}


@pytest.fixture(scope="module")
def store():
    """A running store holding three traces from two services, sent over UDP by real tracers."""
    with running_collector(CollectorConfig.on_free_ports(max_traces=100)) as collector:
        gateway = jaeger_tracer("gateway", collector.jaeger_compact_port)
        proxy = jaeger_tracer("github-proxy", collector.jaeger_compact_port)
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
    body = strict_json(response.text)
    assert list(body) == ["data", "total", "limit", "offset", "errors"]
    return body


def strict_json(text: str):
    """JSON as strict parsers read it: no NaN, Infinity or -Infinity."""

    def reject(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=reject)


# Jaeger's UI model, as Jaeger's `model/json` package declares it (field order as declared there; `flags`
# only when set). Every value's JSON type is stated: a key or a type the real Jaeger UI would not expect fails.
TRACE = {"traceID": str, "spans": list, "processes": dict, "warnings": (list, type(None))}
SPAN = {
    "traceID": str,
    "spanID": str,
    "flags": int,
    "operationName": str,
    "references": list,
    "startTime": int,
    "duration": int,
    "tags": list,
    "logs": list,
    "processID": str,
    "warnings": (list, type(None)),
}
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
        (
            "/api/traces",
            {"service": "gateway", "minDuration": "9" * 400 + "ms"},
            "'minDuration': duration out of range",
        ),
        ("/api/traces", {"service": "gateway", "maxDuration": "-" + "9" * 400 + "h"}, "'maxDuration': duration out"),
        ("/api/traces", {"service": "gateway", "lookback": "1e309h"}, "parameter 'lookback': not a duration"),
        ("/api/traces", {"service": "gateway", "lookback": "9" * 400 + "h"}, "'lookback': duration out of range"),
        ("/api/traces", {"service": "gateway", "tags": "[" * 2000 + "]" * 2000}, "not JSON nested this deep"),
        ("/api/traces", {"service": "gateway", "tags": '{"a":' + "[" * 2000 + "]" * 2000 + "}"}, "nested this deep"),
        ("/api/traces", {"service": "gateway", "tags": '{"error":["true"]}'}, "value of 'error' is not a string"),
        # the store's own depth limit, the same on every Python (3.13's JSON decoder recurses differently)
        ("/api/traces", {"service": "gateway", "tags": '{"a":' + "[" * 40 + "]" * 40 + "}"}, "nested this deep"),
        ("/api/traces", {"service": "gateway", "limit": "9" * 5000}, "parameter 'limit'"),
        ("/api/traces", {"service": "gateway", "start": "9" * 30}, "parameter 'start' is out of range"),
        ("/api/dependencies", {"endTs": "-" + "9" * 30}, "parameter 'endTs' is out of range"),
        ("/api/traces", {"service": "gateway", "limit": "\u00b3"}, "parameter 'limit' must be a whole number"),
        ("/api/traces", {"service": "gateway", "limit": "\u0663"}, "parameter 'limit' must be a whole number"),
        ("/api/traces", {"service": "gateway", "start": " 5"}, "parameter 'start' must be a whole number"),
        ("/api/traces", {"service": "gateway", "start": "20", "end": "10"}, "'start' must not be after 'end'"),
        ("/api/traces", {"service": "gateway", "lookback": "-1h"}, "'lookback' must not be negative"),
    ],
)
def test_bad_parameters_are_400_with_a_message(store, path, params, message):
    body = api(store, path, 400, **params)
    assert body["data"] is None
    assert body["errors"][0]["code"] == 400 and message in body["errors"][0]["msg"]


@pytest.mark.parametrize("lookback", ["2d", "1w", "4w"])
def test_jaeger_ui_s_long_lookbacks(store, lookback):
    """Jaeger UI offers 2d ... 4w beside durations; a search that far back finds today's traces."""
    body = api(store, "/api/traces", 200, service="gateway", lookback=lookback)
    assert body["data"] and body["errors"] is None


def test_a_request_line_too_long_is_answered_in_jaegers_shape(store):
    """tags= of 200,000 characters: the HTTP server refuses it before the app sees it, in JSON all the same."""
    response = requests.get(store.url + "/api/traces", params={"service": "gateway", "tags": "x" * 200_000}, timeout=5)
    assert response.status_code == 414 and response.headers["Content-Type"] == "application/json"
    assert strict_json(response.text)["errors"][0] == {
        "code": 414,
        "msg": "the request line is longer than 64 KiB: ask with fewer or shorter parameters (tags?)",
    }
    assert api(store, "/api/services")["data"]  # and the store answers the next request


def test_unknown_trace_and_route_are_404(store):
    assert api(store, "/api/traces/0123456789abcdef", 404)["errors"][0]["msg"].startswith("trace not found")
    assert api(store, "/api/nothing", 404)["errors"][0]["code"] == 404


def test_malformed_datagrams_are_counted_not_fatal(store):
    before = api_stats(store)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in [b"", b"junk", b"\x82\x21\x01\x09emitBatch\x1c\x1c", bytes(range(256)) * 10]:
            sock.sendto(junk, ("127.0.0.1", store.jaeger_compact_port))
    wait_for(
        store.url, lambda: api_stats(store)["jaeger_compact"]["malformed"] >= before["jaeger_compact"]["malformed"] + 4
    )
    assert api(store, "/api/services")["data"] == ["gateway", "github-proxy"]  # still serving


def api_stats(store) -> dict:
    return requests.get(store.url + "/api/stats", timeout=5).json()


def test_a_burst_is_not_dropped():
    with running_collector(CollectorConfig.on_free_ports()) as collector:
        tracer = jaeger_tracer("burst", collector.jaeger_compact_port, queue_size=5000)
        for n in range(2000):
            with tracer.start_active_span(f"span-{n % 7}"):
                pass
        close(tracer)
        wait_for(collector.url, lambda: collector.store.stats.spans_stored >= 2000, timeout=15)
        assert collector.jaeger_compact_receiver.stats.malformed == 0
        assert collector.jaeger_compact_receiver.stats.dropped_datagrams == 0


HOSTILE = [
    "",
    " ",
    "0",
    "-1",
    "9" * 400,
    "-" + "9" * 400,
    "9" * 5000,
    "1e309",
    "-1e309",
    "NaN",
    "Infinity",
    "0x10",
    "1e309h",
    "9" * 400 + "ms",
    "1.5.5s",
    "\u0663",
    "\x00",
    "\ufffd" * 100,
    "a:" + "b" * 1000,
    "[" * 2000,
    "[" * 2000 + "]" * 2000,
    '{"a":' + "[" * 2000 + "]" * 2000 + "}",
    '{"a":null}',
    '{"a":{"b":1}}',
    '{"a":1e999}',
]
ENVELOPE = ["data", "total", "limit", "offset", "errors"]
METRICS_PARAMETERS = ["service", "groupByOperation", "endTs", "lookback", "step", "ratePer", "spanKind", "quantile"]
ROUTE_PARAMETERS = {
    "/api/metrics/latencies": METRICS_PARAMETERS,
    "/api/metrics/calls": METRICS_PARAMETERS,
    "/api/metrics/errors": METRICS_PARAMETERS,
    "/api/traces": [
        "service",
        "operation",
        "tags",
        "tag",
        "minDuration",
        "maxDuration",
        "start",
        "end",
        "lookback",
        "limit",
        "traceID",
    ],
    "/api/operations": ["service", "spanKind"],
    "/api/dependencies": ["endTs", "lookback"],
    "/api/services": ["service"],
}


@pytest.mark.parametrize("route", list(ROUTE_PARAMETERS))
def test_no_parameter_value_gives_a_500(store, route):
    """Every parameter, every hostile value: an answer or a 400 in Jaeger's shape, never a 500 or HTML."""
    for name in ROUTE_PARAMETERS[route]:
        for value in HOSTILE:
            params = {"service": "gateway", name: value}
            response = requests.get(store.url + route, params=params, timeout=5)
            assert response.status_code in (200, 400), (name, value[:40], response.text[:300])
            body = strict_json(response.text)
            shape = ["name", "type", "help", "metrics"] if "metrics" in route and response.ok else ENVELOPE
            assert list(body) == shape
    raw = requests.get(store.url + "/api/traces?service=%FF&tags=%FF%FE&minDuration=%FF", timeout=5)
    assert raw.status_code == 400 and strict_json(raw.text)["errors"][0]["code"] == 400
    for trace_id in ["9" * 400, "\ufffd", "%00", "0" * 33]:
        assert api(store, f"/api/traces/{trace_id}", 400)["errors"][0]["msg"].startswith("not a trace id")


def test_an_internal_error_is_answered_in_jaegers_shape():
    class Broken(TraceStore):
        def services(self) -> list[str]:
            raise RuntimeError("a bug")

    response = create_app(Broken()).test_client().get("/api/services")
    assert response.status_code == 500
    assert response.get_json()["errors"] == [
        {"code": 500, "msg": "internal error: RuntimeError (the store's log has the details)"}
    ]


def datagram(batch: Batch) -> bytes:
    """One emitBatch call in compact Thrift, as jaeger-client sends it."""
    buffer = TMemoryBuffer()
    protocol = TCompactProtocol(buffer)
    protocol.writeMessageBegin("emitBatch", TMessageType.ONEWAY, 0)
    Agent.emitBatch_args(batch=batch).write(protocol)
    protocol.writeMessageEnd()
    return buffer.getvalue()


def test_float_tags_of_infinity_and_nan_are_valid_json(tmp_path):
    """JSON has no NaN or Infinity: such a float tag becomes a string tag, in answers and in the journal."""
    names = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}

    def tags() -> list[Tag]:
        return [Tag(key=f"ratio{value}", vType=TagType.DOUBLE, vDouble=float(value)) for value in names]

    batch = Batch(
        process=Process(serviceName="floats", tags=tags()),
        spans=[
            Span(
                traceIdLow=7,
                traceIdHigh=0,
                spanId=1,
                parentSpanId=0,
                operationName="divide",
                flags=1,
                startTime=int(time.time() * 1_000_000),
                duration=5,
                tags=tags(),
                logs=[Log(timestamp=1, fields=tags())],
            )
        ],
    )
    journal = tmp_path / "traces.jsonl"
    with (
        running_collector(CollectorConfig.on_free_ports(journal=journal)) as collector,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.sendto(datagram(batch), ("127.0.0.1", collector.jaeger_compact_port))
        wait_for(collector.url, lambda: collector.store.trace_count() == 1)
        (trace,) = api(collector, "/api/traces", service="floats")["data"]
        assert api(collector, "/api/traces/7")["data"] == [trace]
        assert api(collector, "/api/traces", service="floats", tag="ratioinf:Infinity")["data"] == [trace]
    (span,) = trace["spans"]
    expected = [{"key": f"ratio{value}", "type": "string", "value": name} for value, name in names.items()]
    assert span["tags"] == expected and span["logs"][0]["fields"] == expected
    assert trace["processes"]["p1"]["tags"] == expected
    (line,) = journal.read_text().splitlines()
    assert strict_json(line)["span"]["tags"] == expected


def test_unreadable_journal_lines_are_counted_in_stats(tmp_path):
    journal = tmp_path / "traces.jsonl"
    tag = {"key": "error", "type": "bool", "value": True}
    good = {
        "traceID": "00000000000000aa",
        "spanID": "0000000000000001",
        "operationName": "op",
        "references": [],
        "startTime": 1,
        "duration": 1,
        "tags": [tag],
        "logs": [],
        "processID": "",
        "warnings": None,
    }
    process = {"serviceName": "reloaded", "tags": []}
    lines = [
        json.dumps({"span": good, "process": process}),
        json.dumps({"span": {**good, "spanID": "0000000000000002", "logs": {"not": "a list"}}, "process": process}),
    ]
    journal.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe\n")
    with running_collector(CollectorConfig.on_free_ports(journal=journal)) as collector:
        found = api(collector, "/api/traces", service="reloaded", tags='{"error":"true"}')["data"]
        assert [span["spanID"] for trace in found for span in trace["spans"]] == ["0000000000000001"]
        assert api_stats(collector)["store"]["journal_lines_skipped"] == 2


def test_trace_ids_the_store_lacks_are_listed_in_errors_as_jaeger_does(store):
    (held,) = api(store, "/api/traces", service="github-proxy")["data"]
    missing = "00000000000000000000000000abcdef"
    response = requests.get(
        store.url + "/api/traces", params=[("traceID", held["traceID"]), ("traceID", missing)], timeout=5
    )
    body = response.json()
    assert response.status_code == 200 and [t["traceID"] for t in body["data"]] == [held["traceID"]]
    assert body["errors"] == [{"code": 404, "msg": "trace not found", "traceID": "abcdef".rjust(16, "0")}]


def test_a_service_name_with_a_slash_finds_its_operations():
    from tests.support.udp_capture import close, jaeger_tracer

    with running_collector(CollectorConfig.on_free_ports()) as collector:
        tracer = jaeger_tracer("team/api", collector.jaeger_compact_port)
        tracer.start_span("list").finish()
        close(tracer)
        wait_for(collector.url, lambda: collector.store.trace_count() == 1)
        body = requests.get(collector.url + "/api/services/team%2Fapi/operations", timeout=5).json()
    assert body["data"] == ["list"]


def test_pretty_print_indents_the_json(store):
    plain = requests.get(store.url + "/api/services", timeout=5).text
    pretty = requests.get(store.url + "/api/services", params={"prettyPrint": "true"}, timeout=5).text
    assert "\n" not in plain.strip() and pretty.startswith('{\n  "data": [')
    assert json.loads(pretty) == json.loads(plain)
    traces = requests.get(store.url + "/api/traces", params={"service": "gateway", "prettyPrint": "true"}, timeout=5)
    assert traces.text.startswith('{\n  "data": [') and len(json.loads(traces.text)["data"]) == 3


def test_an_otlp_json_upload_is_transformed_as_jaeger_does(store):
    """Jaeger UI's "Upload" posts an OTLP JSON file to /api/transform: the traces in it come back in /api/traces's
    shape (here the store's own trace, out through API v3 and back), and nothing is stored."""
    (original,) = api(store, "/api/traces", service="gateway", limit=1, operation="call_github_proxy")["data"]
    otlp = requests.get(store.url + f"/api/v3/traces/{original['traceID']}", timeout=5).json()["result"]
    answer = requests.post(store.url + "/api/transform", data=json.dumps(otlp), timeout=5)
    assert answer.status_code == 200
    body = strict_json(answer.text)
    assert list(body) == ["data", "total", "limit", "offset", "errors"] and body["errors"] is None
    (uploaded,) = body["data"]
    assert uploaded["traceID"] == original["traceID"]

    def shape(trace: dict) -> list:
        services = {key: process["serviceName"] for key, process in trace["processes"].items()}
        return [(services[s["processID"]], s["operationName"], s["spanID"], s["references"]) for s in trace["spans"]]

    assert shape(uploaded) == shape(original)
    before = store.store.trace_count()
    for bad in (b"{nope", b"[1]", b'{"resourceSpans": 3}'):
        refused = requests.post(store.url + "/api/transform", data=bad, timeout=5)
        assert refused.status_code == 400 and strict_json(refused.text)["errors"][0]["code"] == 400
    assert store.store.trace_count() == before
