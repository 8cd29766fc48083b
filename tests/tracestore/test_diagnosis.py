"""The trace doctor on hand-built traces: each finding, and the traces the lessons never make."""

from __future__ import annotations

from workshop.tracestore import model
from workshop.tracestore.diagnosis import diagnose, diagnose_recent

T0 = 1_700_000_000_000_000


def build(trace_id: str, spans: list[dict]) -> model.Json:
    """Each span: id, service, op, start (µs after T0), duration; optional parent, ref, kind, tags, logs, trace."""
    records = []
    for s in spans:
        tags = [model.string_tag("span.kind", s["kind"])] if "kind" in s else []
        tags += [model.tag(k, "int64" if isinstance(v, int) else "string", v) for k, v in s.get("tags", {}).items()]
        refs = (
            [model.reference(s.get("ref", "CHILD_OF"), s.get("trace", trace_id), s["parent"])] if "parent" in s else []
        )
        span = model.span(trace_id, s["id"], s["op"], refs, T0 + s["start"], s["duration"], tags, s.get("logs", []))
        records.append((span, model.process(s["service"], [model.string_tag("host", s.get("host", s["service"]))])))
    return model.assemble_trace(trace_id, records)


def kinds(findings) -> list[str]:
    return [finding.kind for finding in findings]


GATEWAY = {"id": "a1", "service": "gateway", "op": "contributors", "start": 0, "duration": 10_000, "kind": "server"}
SEND = {
    "id": "a2",
    "service": "gateway",
    "op": "send_clean_job",
    "start": 5_000,
    "duration": 4_000,
    "parent": "a1",
    "kind": "producer",
    "tags": {"message_bus.destination": "clean_jobs"},
}
WORKER = {
    "id": "b1",
    "service": "worker",
    "op": "handle_clean_job",
    "start": 8_000,
    "duration": 1_000,
    "kind": "consumer",
    "tags": {"message_bus.destination": "clean_jobs"},
}


def test_a_job_without_its_context_is_named_on_both_traces():
    sender, worker = build("aaaa", [GATEWAY, SEND]), build("bbbb", [WORKER])
    (here,) = diagnose(sender, [worker])
    assert here.kind == "lost_context" and here.traces == ["bbbb"] and here.spans == ["a2"] and here.lesson == "step5"
    assert here.title == (
        "worker's handle_clean_job started a trace of its own 3 ms into gateway's send_clean_job: "
        "the job carried no trace context (or worker did not read it)"
    )
    assert "the job's body" in here.detail
    (there,) = diagnose(worker, [sender])
    assert there.kind == "lost_context" and there.traces == ["aaaa"] and there.spans == ["b1"]


def test_a_whole_trace_and_a_call_to_an_untraced_service_are_fine():
    joined = build("aaaa", [GATEWAY, SEND, {**WORKER, "parent": "a2", "ref": "FOLLOWS_FROM"}])
    github = {"id": "a3", "service": "gateway", "op": "github_request", "start": 100, "duration": 50}
    github |= {"parent": "a1", "kind": "client", "tags": {"peer.service": "github"}}
    other_request = build("cccc", [{**GATEWAY, "id": "c1", "start": 120}])  # another request, meanwhile
    assert diagnose(build("dddd", [GATEWAY, github]), [joined, other_request]) == []
    assert diagnose(joined, [other_request]) == []


def test_an_http_hop_matches_by_peer_service_or_by_port():
    call = {"id": "a2", "service": "gateway", "op": "GET", "start": 1_000, "duration": 5_000, "parent": "a1"}
    call |= {"kind": "client", "tags": {"http.url": "http://127.0.0.1:8481/stats/pallets/flask"}}
    proxy = {"id": "p1", "service": "github-proxy", "op": "GET /stats", "start": 2_000, "duration": 1_000}
    proxy |= {"kind": "server", "tags": {"server.port": 8481}}
    (finding,) = diagnose(build("aaaa", [GATEWAY, call]), [build("pppp", [proxy])])
    assert finding.lesson == "step4" and "headers" in finding.detail
    elsewhere = build("qqqq", [{**proxy, "tags": {"server.port": 9999}}])  # another server, not this call's
    assert diagnose(build("aaaa", [GATEWAY, call]), [elsewhere]) == []


def test_a_parent_that_never_arrived_and_several_roots():
    orphan = {"id": "b2", "service": "worker", "op": "clean", "start": 3_000, "duration": 10, "parent": "gone"}
    (finding,) = diagnose(build("aaaa", [GATEWAY, orphan]))  # its second root is the missing parent's doing
    assert finding.kind == "missing_parent" and finding.spans == ["b2"]
    assert finding.title == "worker's clean names a parent span gone that never arrived"
    twins = [{**orphan, "id": f"b{n}", "op": "github_request"} for n in range(3, 6)]
    (finding,) = diagnose(build("aaaa", [GATEWAY, *twins]))  # one finding a missing parent, naming every child
    assert finding.title == "3 spans (worker's github_request ×3) name a parent span gone that never arrived"
    assert finding.spans == ["b3", "b4", "b5"]
    again = {**GATEWAY, "id": "c1", "service": "proxy"}  # two spans begin the trace, neither with a parent
    (finding,) = diagnose(build("aaaa", [GATEWAY, again]))
    assert finding.kind == "several_roots" and finding.spans == ["a1", "c1"]


def test_clock_skew_across_processes_only():
    early = {"id": "b1", "service": "worker", "op": "handle", "start": -5_000, "duration": 10, "parent": "a1"}
    (finding,) = diagnose(build("aaaa", [GATEWAY, early]))
    assert finding.kind == "clock_skew" and "starts 5ms before its parent gateway's contributors" in finding.title
    same = {**early, "service": "gateway", "host": "gateway"}  # one process: one clock
    assert diagnose(build("aaaa", [GATEWAY, same])) == []


def test_one_request_in_a_64_and_a_128_bit_trace():
    short, long = build("0000000000000abc", [GATEWAY]), build("00000000000000010000000000000abc", [GATEWAY])
    (finding,) = diagnose(short, [long])
    assert finding.kind == "two_widths" and finding.traces == ["00000000000000010000000000000abc"]


def test_a_5xx_without_an_error_mark():
    failed = {**GATEWAY, "tags": {"http.status_code": 500}}
    (finding,) = diagnose(build("aaaa", [failed]))
    assert finding.kind == "error_not_marked" and finding.lesson == "step3"
    marked = build("bbbb", [failed])
    marked["spans"][0]["tags"].append(model.tag("error", "bool", True))
    assert diagnose(marked) == []


def test_a_secret_is_found_by_name_or_shape_and_never_shown():
    token = "ghp_" + "x" * 36
    baggage = [
        model.log_entry(
            T0,
            [
                model.string_tag("event", "baggage"),
                model.string_tag("key", "auth-token"),
                model.string_tag("value", "s3cr3t"),
            ],
        )
    ]
    spans = [
        {**GATEWAY, "logs": baggage},
        {
            "id": "a2",
            "service": "gateway",
            "op": "call",
            "start": 10,
            "duration": 5,
            "parent": "a1",
            "tags": {"http.header": f"Bearer {token}"},
        },
    ]
    findings = diagnose(build("aaaa", spans))
    assert kinds(findings) == ["secret", "secret"]
    assert "baggage 'auth-token'" in findings[0].title and "(by its name)" in findings[0].title
    assert "(by its value's shape)" in findings[1].title
    assert all(token not in str(f.as_json()) and "s3cr3t" not in str(f.as_json()) for f in findings)


def test_heavy_baggage():
    tags = {f"baggage.item{n}": "v" for n in range(9)} | {"baggage.big": "x" * 65}
    (finding,) = diagnose(build("aaaa", [{**GATEWAY, "tags": tags}]))
    assert finding.kind == "oversized_baggage" and "1 item over 64 bytes (big)" in finding.title
    assert "10 items" in finding.title


def test_baggage_set_upstream_that_a_service_downstream_did_not_get():
    set_here = [
        model.log_entry(
            T0, [model.string_tag(k, v) for k, v in (("event", "baggage"), ("key", "client"), ("value", "make demo"))]
        )
    ]
    gateway = {**GATEWAY, "logs": set_here}
    worker = {**WORKER, "parent": "a2", "tags": {"baggage.client": "-"}}
    (finding,) = diagnose(build("aaaa", [gateway, SEND, worker]))
    assert finding.kind == "baggage_lost" and finding.spans == ["b1", "a1"]
    assert (
        finding.title == "worker's handle_clean_job did not get the baggage item 'client' that gateway's "
        "contributors set"
    )
    assert finding.lesson == "step6"  # jaeger-client's spans; OpenTelemetry's (a scope tag) link to lesson 7
    otel = {**worker, "tags": {"baggage.client": "-", "otel.scope.name": "worker"}}
    assert diagnose(build("aaaa", [gateway, SEND, otel]))[0].lesson == "step7"
    arrived = {**worker, "tags": {"baggage.client": "make demo"}}
    assert diagnose(build("aaaa", [gateway, SEND, arrived])) == []
    assert diagnose(build("aaaa", [GATEWAY, SEND, worker])) == []  # nobody set it: nothing was lost


def test_operation_names_that_embed_values_across_traces():
    def request(n: int, name: str) -> model.Json:
        return build(f"{n:04x}", [{**GATEWAY, "id": f"{n:016x}", "op": name}])

    named = [request(n, f"GET /contributors/owner{n}/repo{n}") for n in range(1, 4)]
    (finding,) = diagnose(named[0], named[1:])
    assert finding.kind == "cardinality" and "and 2 more like it" in finding.title
    routes = [request(n, "GET /contributors/<owner>/<repo>") for n in range(1, 4)]
    assert diagnose(routes[0], routes[1:]) == []


def test_a_thousand_spans_and_otlp_links_give_no_false_alarm():
    spans = [{**GATEWAY, "id": "root"}] + [
        {"id": f"{n:016x}", "service": "svc", "op": f"op{n % 7}", "start": n, "duration": 1, "parent": "root"}
        for n in range(1, 1000)
    ]
    spans.append({"id": "linked", "service": "svc", "op": "batch", "start": 5, "duration": 1, "parent": "root"})
    trace = build("aaaa", spans)
    linked = next(span for span in trace["spans"] if span["spanID"] == "linked")
    linked["references"].append(model.reference("FOLLOWS_FROM", "ffff", "0000000000000001"))  # OTLP's link
    assert diagnose(trace) == []


def test_recent_findings_are_grouped():
    sender, worker = build("aaaa", [GATEWAY, SEND]), build("bbbb", [WORKER])
    later_sender = build(
        "cccc", [{**GATEWAY, "id": "c1", "start": 1_000_000}, {**SEND, "id": "c2", "parent": "c1", "start": 1_005_000}]
    )
    later_worker = build("dddd", [{**WORKER, "id": "d1", "start": 1_008_000}])
    (group,) = diagnose_recent([sender, worker, later_sender, later_worker])
    assert group.kind == "lost_context" and group.title == "lost the trace context between gateway and worker"
    assert sorted(group.traces) == ["aaaa", "bbbb", "cccc", "dddd"] and group.lesson == "step5"


def zipkin_trace(spans: list[dict]) -> model.Json:
    """Zipkin v2 JSON, read by the store's Zipkin receiver, as Jaeger's API answers it."""
    from workshop.tracestore.receivers.zipkin import spans_from_zipkin

    records, _ = spans_from_zipkin(spans)
    return model.assemble_trace(records[0][0]["traceID"], records)


def zipkin(trace_id: str, span_id: str, name: str, service: str, kind: str, start: int, **more) -> dict:
    return {
        "traceId": trace_id,
        "id": span_id,
        "name": name,
        "kind": kind,
        "timestamp": T0 + start,
        "duration": more.pop("duration", 1_000),
        "localEndpoint": {"serviceName": service},
        **more,
    }


def test_zipkins_shared_span_ids_are_one_whole_trace_and_its_lost_hop_is_found():
    client = zipkin(
        "a1b2",
        "00000000000000c1",
        "get /stats",
        "node-proxy",
        "CLIENT",
        0,
        duration=5_000,
        remoteEndpoint={"serviceName": "github"},
    )
    shared = zipkin("a1b2", "00000000000000c1", "get /stats", "github", "SERVER", 1_000, shared=True)
    assert diagnose(zipkin_trace([client, shared])) == []  # one id for both halves: Zipkin's way, not a fault
    alone = zipkin("ffff", "00000000000000d1", "get /stats", "github", "SERVER", 1_000)
    (finding,) = diagnose(zipkin_trace([client]), [zipkin_trace([alone])])
    assert finding.kind == "lost_context" and finding.traces == ["000000000000ffff"]
    assert "github's get /stats started a trace of its own 1 ms into node-proxy's get /stats" in finding.title


def test_a_nodejs_service_over_otlp_that_lost_the_context_is_matched_by_its_port():
    """Another language's spans (OpenTelemetry JS's current HTTP names): the hop is matched by the port."""
    call = {
        "id": "a2",
        "service": "gateway",
        "op": "GET",
        "start": 1_000,
        "duration": 5_000,
        "parent": "a1",
        "kind": "client",
        "tags": {"url.full": "http://127.0.0.1:8481/stats/a/b"},
    }
    node = {
        "id": "c1",
        "service": "github-proxy",
        "op": "GET /stats/:owner/:repo",
        "start": 2_000,
        "duration": 1_000,
        "kind": "server",
        "tags": {"server.port": 8481, "telemetry.sdk.language": "nodejs"},
    }
    (finding,) = diagnose(build("aaaa", [GATEWAY, call]), [build("cccc", [node])])
    assert finding.kind == "lost_context" and finding.spans == ["a2"] and finding.traces == ["cccc"]
    elsewhere = {**node, "tags": {"server.port": 9999}}
    assert diagnose(build("aaaa", [GATEWAY, call]), [build("cccc", [elsewhere])]) == []
