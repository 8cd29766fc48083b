"""Zipkin v2 JSON into the store, as py_zipkin posts it (a client span, and the server span that shares its
id), mapped to Jaeger's model as Jaeger does; bad input answered, never fatal."""

from __future__ import annotations

import json
import time

import pytest
import requests
from py_zipkin import Kind
from py_zipkin.encoding import Encoding
from py_zipkin.transport import BaseTransportHandler
from py_zipkin.zipkin import ZipkinAttrs, zipkin_span

from workshop.tracestore.collector import CollectorConfig, running_collector


class HttpTransport(BaseTransportHandler):
    """py_zipkin's spans, posted to a Zipkin v2 endpoint."""

    def __init__(self, url: str):
        self.url = url

    def get_max_payload_bytes(self):
        return None

    def send(self, payload: bytes) -> None:
        answer = requests.post(self.url, data=payload, headers={"Content-Type": "application/json"}, timeout=5)
        assert answer.status_code == 202, answer.text


@pytest.fixture
def collector():
    with running_collector(CollectorConfig.on_free_ports()) as running:
        running.zipkin_url = f"http://127.0.0.1:{running.zipkin_port}/api/v2/spans"
        yield running


def test_py_zipkin_client_and_shared_server_span(collector):
    transport = HttpTransport(collector.zipkin_url)
    with zipkin_span(
        service_name="gateway",
        span_name="contributors",
        transport_handler=transport,
        sample_rate=100.0,
        encoding=Encoding.V2_JSON,
        kind=Kind.SERVER,
    ) as root:
        root.update_binary_annotations({"github.repo": "pallets/flask"})
        with zipkin_span(
            service_name="gateway", span_name="call_github_proxy", kind=Kind.CLIENT, encoding=Encoding.V2_JSON
        ) as call:
            call.add_sa_binary_annotation(port=8481, service_name="github-proxy", host="127.0.0.1")
            sent = call.zipkin_attrs  # what the client puts on the wire (B3): the server span reuses its id
            attrs = ZipkinAttrs(sent.trace_id, sent.span_id, sent.parent_span_id, flags="0", is_sampled=True)
            with zipkin_span(
                service_name="github-proxy",
                span_name="stats",
                zipkin_attrs=attrs,
                kind=Kind.SERVER,
                transport_handler=transport,
                encoding=Encoding.V2_JSON,
            ) as served:
                served.update_binary_annotations({"error": "GitHub failed"})
                served.add_annotation("retry")
    trace_id = root.zipkin_attrs.trace_id
    deadline = time.monotonic() + 5
    while collector.store.get(trace_id.lstrip("0") or "0") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    trace = collector.store.get(f"{int(trace_id, 16):016x}")
    spans = {s["operationName"]: s for s in trace["spans"]}
    services = {s["operationName"]: trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}
    assert services == {"contributors": "gateway", "call_github_proxy": "gateway", "stats": "github-proxy"}
    client, server = spans["call_github_proxy"], spans["stats"]
    assert server["spanID"] != client["spanID"]  # the shared id: the server span got its own
    assert server["references"] == [{"refType": "CHILD_OF", "traceID": trace["traceID"], "spanID": client["spanID"]}]
    client_tags = {t["key"]: t["value"] for t in client["tags"]}
    assert client_tags["span.kind"] == "client" and client_tags["peer.service"] == "github-proxy"
    assert client_tags["net.peer.ip"] == "127.0.0.1" and client_tags["net.peer.port"] == 8481
    server_tags = {t["key"]: t["value"] for t in server["tags"]}
    assert server_tags["error"] is True and server_tags["error.message"] == "GitHub failed"
    assert [f["value"] for log in server["logs"] for f in log["fields"]] == ["retry"]
    assert {t["key"]: t["value"] for t in spans["contributors"]["tags"]}["github.repo"] == "pallets/flask"


@pytest.mark.parametrize(
    "body, content_type, status, message",
    [
        (b"{nope", "application/json", 400, "not JSON"),
        (b'{"traceId": "1"}', "application/json", 400, "a list of spans"),
        (b"[" * 100_000, "application/json", 400, "not JSON"),
        (b"spans", "application/x-thrift", 415, "application/json"),
    ],
    ids=["bad-json", "not-a-list", "deep", "thrift"],
)
def test_bad_input_is_answered_and_the_receiver_keeps_going(collector, body, content_type, status, message):
    answer = requests.post(collector.zipkin_url, data=body, headers={"Content-Type": content_type}, timeout=5)
    assert answer.status_code == status and message in answer.json()["message"]
    good = [
        {
            "traceId": "a" * 16,
            "id": "b" * 16,
            "name": "ok",
            "timestamp": 1,
            "duration": 2,
            "localEndpoint": {"serviceName": "z"},
        }
    ]
    bad = [{"traceId": "zz", "id": "1"}, {"id": "c" * 16}, "not a span"]
    answer = requests.post(
        collector.zipkin_url, data=json.dumps(good + bad), headers={"Content-Type": "application/json"}, timeout=5
    )
    assert answer.status_code == 202
    stats = requests.get(collector.url + "/api/stats", timeout=5).json()["zipkin"]
    assert stats["spans"] == 1 and stats["rejected_spans"] == 3 and stats["bad_requests"] == 1


@pytest.mark.parametrize("field", ["timestamp", "duration"])
@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_a_span_with_an_infinite_time_is_rejected_and_counted_not_a_500(collector, field, value):
    before = requests.get(collector.url + "/api/stats", timeout=5).json()["zipkin"]
    span = {"traceId": "d" * 16, "id": "e" * 16, "name": "x", "timestamp": 1, "duration": 2}
    body = json.dumps([span]).replace(f'"{field}": {span[field]}', f'"{field}": {value}')
    answer = requests.post(collector.zipkin_url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert answer.status_code == 202
    after = requests.get(collector.url + "/api/stats", timeout=5).json()["zipkin"]
    assert after["rejected_spans"] == before["rejected_spans"] + 1 and after["spans"] == before["spans"]


def test_a_shared_server_span_from_another_process_becomes_the_client_span_s_child(collector):
    """As py_zipkin in two processes sends them: the server's half of the span arrives on its own, `shared`."""
    common = {"traceId": "abc", "id": "1234", "parentId": "99"}
    client = {
        **common,
        "name": "call",
        "kind": "CLIENT",
        "timestamp": 10,
        "duration": 50,
        "localEndpoint": {"serviceName": "gateway"},
    }
    server = {
        **common,
        "name": "stats",
        "kind": "SERVER",
        "shared": True,
        "timestamp": 12,
        "duration": 40,
        "localEndpoint": {"serviceName": "github-proxy"},
    }
    for span in (client, server):
        assert requests.post(collector.zipkin_url, json=[span], timeout=5).status_code == 202
    spans = {s["operationName"]: s for s in collector.store.get("0000000000000abc")["spans"]}
    assert spans["call"]["spanID"] == "0000000000001234"
    assert spans["stats"]["references"][0]["spanID"] == "0000000000001234" and spans["stats"]["spanID"] != "1234"
