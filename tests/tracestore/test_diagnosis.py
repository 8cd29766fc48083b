"""The trace doctor on hand-built traces: each finding, and the traces the lessons never make."""

from __future__ import annotations

from workshop.tracestore import model
from workshop.tracestore.diagnosis import diagnose, diagnose_recent

T0 = 1_700_000_000_000_000


def build(trace_id: str, spans: list[dict]) -> model.Json:
    """Each span: id, service, op, start (µs after T0), duration; optional parent, ref, kind, tags, logs, trace,
    process (its process's tags, beside `host`)."""
    records = []
    for s in spans:
        tags = [model.string_tag("span.kind", s["kind"])] if "kind" in s else []
        tags += [model.tag(k, "int64" if isinstance(v, int) else "string", v) for k, v in s.get("tags", {}).items()]
        refs = (
            [model.reference(s.get("ref", "CHILD_OF"), s.get("trace", trace_id), s["parent"])] if "parent" in s else []
        )
        span = model.span(trace_id, s["id"], s["op"], refs, T0 + s["start"], s["duration"], tags, s.get("logs", []))
        said = [model.string_tag("host", s.get("host", s["service"]))]
        said += [model.string_tag(k, v) for k, v in s.get("process", {}).items()]
        records.append((span, model.process(s["service"], said)))
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


def test_recent_findings_are_grouped_and_a_hop_counts_once():
    sender, worker = build("aaaa", [GATEWAY, SEND]), build("bbbb", [WORKER])
    later_sender = build(
        "cccc", [{**GATEWAY, "id": "c1", "start": 1_000_000}, {**SEND, "id": "c2", "parent": "c1", "start": 1_005_000}]
    )
    later_worker = build("dddd", [{**WORKER, "id": "d1", "start": 1_008_000}])
    heavy = build("eeee", [{**GATEWAY, "id": "e1", "start": 2_000_000, "tags": {"baggage.big": "x" * 65}}])
    found = diagnose_recent([sender, worker, later_sender, later_worker, heavy])
    lost, baggage = found.groups
    assert lost.kind == "lost_context" and lost.count == 2 and lost.lesson == "step5"
    assert lost.title == "2 requests lost the trace context between gateway and worker (4 traces)"
    assert sorted(lost.traces) == ["aaaa", "bbbb", "cccc", "dddd"]
    assert baggage.title == "1 trace carries heavy baggage" and baggage.traces == ["eeee"]
    assert found.traces == 5 and found.since(T0 + 4 * 60_000_000) == "in the last 4 minutes"
    assert found.since(T0 + 3_000_000) == "in the last 3 seconds"


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


# --- the audit's cases: clock skew both ways, hops matched by host and timing, one to one under load ------------


def test_clock_skew_as_jaegers_adjuster_judges_it():
    """A shorter child outside its parent (starting before it, or ending after it) is skew; a longer child is
    only if it starts before its parent (it may be async, or the parent timed out). Not on one host."""
    parent = {**GATEWAY, "duration": 10_000, "process": {"ip": "10.0.0.1"}}
    late = {"id": "b1", "service": "worker", "op": "handle", "start": 5_000, "duration": 8_000, "parent": "a1"}
    late["process"] = {"ip": "10.0.0.2"}
    (finding,) = diagnose(build("aaaa", [parent, late]))
    assert finding.kind == "clock_skew" and finding.title == (
        "worker's handle ends 3ms after its parent gateway's contributors"
    )
    assert finding.spans == ["b1", "a1"] and "moves worker's spans here 4ms earlier to fit" in finding.detail
    assert "skipping clock skew adjustment" not in finding.detail  # every span has its parent
    longer = {**late, "start": 2_000, "duration": 30_000}  # outlives its parent: async, not skew
    assert diagnose(build("aaaa", [parent, longer])) == []
    early_and_longer = {**longer, "start": -3_000}
    assert "starts 3ms before its parent" in diagnose(build("aaaa", [parent, early_and_longer]))[0].title
    within = {**late, "duration": 5_500}  # ends 500 µs after: within the tolerance
    assert diagnose(build("aaaa", [parent, within])) == []
    one_host = {**late, "process": {"ip": "10.0.0.1"}}  # one machine, one clock: Jaeger leaves it too
    assert diagnose(build("aaaa", [parent, one_host])) == []
    unknown = {**late, "process": {}, "duration": 6_500}  # no host said: a server's span may end a little
    assert diagnose(build("aaaa", [{**parent, "process": {}}, unknown])) == []  # after its client's (1.5 ms)
    early = {**unknown, "start": -3_000, "duration": 2_000}  # but it cannot start before it: skew
    assert "starts 3ms before" in diagnose(build("aaaa", [{**parent, "process": {}}, early]))[0].title
    orphan = {"id": "c1", "service": "proxy", "op": "x", "start": 0, "duration": 1, "parent": "gone"}
    kinds_found = diagnose(build("aaaa", [parent, late, orphan]))
    skew = next(f for f in kinds_found if f.kind == "clock_skew")
    assert "Spans whose parent never arrived cannot be adjusted at all: Jaeger warns 'invalid parent span IDs=" in (
        skew.detail
    )
    missing = next(f for f in kinds_found if f.kind == "missing_parent")
    assert "skipping clock skew adjustment" in missing.detail and "cannot check the span's clock" in missing.detail


def test_a_hop_is_matched_by_the_urls_host_or_by_the_timing_alone_and_says_how_sure():
    call = {"id": "a2", "service": "gateway", "op": "GET", "start": 1_000, "duration": 5_000, "parent": "a1"}
    call |= {"kind": "client", "tags": {"http.url": "http://github-proxy/stats/a/b"}}
    proxy = {"id": "p1", "service": "github-proxy", "op": "stats", "start": 2_000, "duration": 1_000}
    proxy |= {"kind": "server", "tags": {"http.target": "/stats/a/b"}}
    (finding,) = diagnose(build("aaaa", [GATEWAY, call]), [build("pppp", [proxy])])
    assert finding.matched == "by the URL gateway called, whose host names github-proxy, and the timing: likely"
    assert finding.matched in finding.detail
    other_path = {**proxy, "tags": {"http.target": "/stats/c/d"}}  # another request's: ruled out
    assert diagnose(build("aaaa", [GATEWAY, call]), [build("pppp", [other_path])]) == []
    bare = {**call, "tags": {}}  # names nothing it called: the timing alone
    (guess,) = diagnose(build("aaaa", [GATEWAY, bare]), [build("pppp", [proxy])])
    assert guess.matched.startswith("by the timing alone (gateway's GET names no service, queue or URL): a guess")
    internal = {**proxy, "kind": "internal"}  # the timing alone needs a server or consumer root
    assert diagnose(build("aaaa", [GATEWAY, bare]), [build("pppp", [internal])]) == []


def test_under_load_each_caller_gets_one_trace_and_each_root_one_caller():
    """20 requests a second: every producer's window (its span, and 100 ms after for the queue) holds the next
    two requests' jobs too. Paired one to one, by the job id both carry, or else first come, first paired."""
    senders, workers = [], []
    for n in range(10):
        at = n * 50_000
        send = {**SEND, "id": f"{n:04x}02", "parent": f"{n:04x}01", "start": at + 5_000, "tags": {}}
        send["tags"] = {"message_bus.destination": "clean_jobs", "job.id": f"job{n}"}
        senders.append(build(f"a{n:03x}", [{**GATEWAY, "id": f"{n:04x}01", "start": at}, send]))
        handle = {**WORKER, "id": f"{n:04x}b1", "start": at + 8_000}
        handle["tags"] = {"message_bus.destination": "clean_jobs", "job.id": f"job{n}"}
        workers.append(build(f"b{n:03x}", [handle]))
    everything = senders + workers
    for n in range(10):
        (finding,) = diagnose(senders[n], everything)
        assert (
            finding.traces == [f"b{n:03x}"] and finding.matched == f"by the job id both spans carry (job{n}): certain"
        )
        (finding,) = diagnose(workers[n], everything)
        assert finding.traces == [f"a{n:03x}"]
    recent = diagnose_recent(everything)
    assert [(g.kind, g.count, len(g.traces)) for g in recent.groups] == [("lost_context", 10, 20)]
    for trace in everything:  # without job ids: first come, first paired (a queue is first in, first out)
        for span in trace["spans"]:
            span["tags"] = [t for t in span["tags"] if t["key"] != "job.id"]
    for n in range(9):
        (finding,) = diagnose(senders[n], everything)
        assert finding.traces == [f"b{n:03x}"] and finding.matched.startswith("by the queue both spans name")


def test_a_follows_from_parent_that_never_arrived():
    later = {"id": "b2", "service": "mailer", "op": "send_mail", "start": 3_000, "duration": 10}
    later |= {"parent": "0000000000000009", "ref": "FOLLOWS_FROM"}
    (finding,) = diagnose(build("aaaa", [GATEWAY, later]))
    assert finding.kind == "missing_parent" and finding.spans == ["b2"]
    assert finding.title == (
        "mailer's send_mail names a follows_from reference to a parent span 0000000000000009 that never arrived"
    )
    link = {**later, "trace": "ffff"}  # a FOLLOWS_FROM to another trace is a link (OTLP's), not a parent
    assert diagnose(build("aaaa", [GATEWAY, link])) == []


def test_a_span_that_is_its_own_parent_or_in_a_cycle_is_said_to_be():
    itself = {"id": "b1", "service": "worker", "op": "loop", "start": 1_000, "duration": 10, "parent": "b1"}
    (finding,) = diagnose(build("aaaa", [GATEWAY, itself]))
    assert finding.kind == "parent_cycle" and finding.title == "worker's loop names itself (span b1) as its parent"
    first = {"id": "c1", "service": "worker", "op": "one", "start": 1_000, "duration": 10, "parent": "c2"}
    second = {**first, "id": "c2", "op": "two", "start": 1_001, "parent": "c1"}
    (finding,) = diagnose(build("aaaa", [GATEWAY, first, second]))
    assert finding.kind == "parent_cycle" and finding.title == "2 spans are each other's parents: c1 -> c2 -> c1"


def test_operation_names_need_evidence_of_values():
    def traces_named(*names: str, service: str = "gateway") -> list[model.Json]:
        return [build(f"{n + 1:04x}", [{**GATEWAY, "service": service, "op": name}]) for n, name in enumerate(names)]

    fixed = traces_named("GET /health", "GET /ready", "GET /metrics", "GET /", "GET /favicon.ico", "GET /robots.txt")
    assert diagnose(fixed[0], fixed[1:]) == []
    no_verb = traces_named("/contributors/o1/r1", "/contributors/o2/r2", "/contributors/o3/r3")
    (finding,) = diagnose(no_verb[0], no_verb[1:])
    assert finding.kind == "cardinality" and "'/contributors/o1/r1' and 2 more like it" in finding.title
    ids = traces_named("get_user_1", "get_user_27")  # digits: a value, seen twice
    assert [f.kind for f in diagnose(ids[0], ids[1:])] == ["cardinality"]
    one_place = traces_named("GET /repos/a/stats", "GET /repos/b/stats", "GET /repos/c/stats")
    assert [f.kind for f in diagnose(one_place[0], one_place[1:])] == ["cardinality"]
    jobs = traces_named("send_clean_job", "handle_clean_job", "retry_clean_job")  # words, not values
    assert diagnose(jobs[0], jobs[1:]) == []
    two = traces_named("GET /contributors/o1/r1", "GET /contributors/o2/r2")  # two are not yet evidence
    assert diagnose(two[0], two[1:]) == []


def test_a_secret_is_a_whole_word_of_the_keys_last_segment_and_process_tags_are_read():
    innocent = {
        "gen_ai.usage.input_tokens": 12,
        "tokenizer": "bpe",
        "token.count": 3,
        "password_reset": "sent",
        "http.request.header.authorization": "[REDACTED]",
    }
    assert diagnose(build("aaaa", [{**GATEWAY, "tags": innocent}])) == []
    leaky = {"db.password": "hunter22", "x-api-key": "k3y", "user.accessToken": "abc"}
    found = diagnose(build("aaaa", [{**GATEWAY, "tags": leaky}]))
    assert sorted(f.title.split("'")[2] for f in found) == ["db.password", "user.accessToken", "x-api-key"]
    assert all(f.lesson == "step3" for f in found)  # tags: lesson 3
    token = "ghp_" + "y" * 36
    otel = {"telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "python", "deploy.note": token}
    (finding,) = diagnose(build("aaaa", [{**GATEWAY, "process": otel}]))
    assert finding.title == (
        "gateway's process has a resource attribute 'deploy.note' that looks like a credential (by its value's shape)"
    )
    assert finding.lesson == "step8" and finding.spans == ["a1"] and token not in str(finding.as_json())
    jaeger = {"jaeger.version": "Python-4.8.0", "auth_token": "s3cr3t"}
    (finding,) = diagnose(build("aaaa", [{**GATEWAY, "process": jaeger}]))
    assert "process tag 'auth_token'" in finding.title and "s3cr3t" not in str(finding.as_json())


JAEGER_CLIENT = {"jaeger.version": "Python-4.8.0"}
OTEL_PYTHON = {"telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "python"}


def test_the_carrier_and_the_lesson_come_from_the_two_sides_tracers():
    call = {"id": "a2", "service": "gateway", "op": "call_github_proxy", "start": 1_000, "duration": 5_000}
    call |= {"parent": "a1", "kind": "client", "tags": {"peer.service": "github-proxy"}}
    proxy = {"id": "p1", "service": "github-proxy", "op": "stats", "start": 2_000, "duration": 1_000, "kind": "server"}

    def lost(caller_process, proxy_process, caller=call, callee=proxy):
        sender = build("aaaa", [{**GATEWAY, "process": caller_process}, {**caller, "process": caller_process}])
        (finding,) = diagnose(sender, [build("pppp", [{**callee, "process": proxy_process}])])
        return finding

    same = lost(JAEGER_CLIENT, JAEGER_CLIENT)
    assert same.title.endswith("the request carried no trace context (or github-proxy did not read it)")
    assert same.carrier == "the request's headers, as uber-trace-id" and same.lesson == "step4"
    assert "tracer.inject(span.context, Format.HTTP_HEADERS, carrier)" in same.check[0]
    mixed = lost(JAEGER_CLIENT, OTEL_PYTHON)
    assert mixed.title.endswith(
        "gateway (jaeger-client) writes uber-trace-id; github-proxy (OpenTelemetry Python) reads traceparent: "
        "the two propagators disagree"
    )
    assert mixed.carrier == "the request's headers: gateway writes uber-trace-id, github-proxy reads traceparent"
    assert mixed.lesson == "step8"
    both = lost(OTEL_PYTHON, OTEL_PYTHON)  # a job or call the code injects by hand: either may be wrong
    assert both.title.endswith(
        "github-proxy read no trace context from the request (gateway did not inject one, or "
        "their propagators disagree)"
    )
    assert both.lesson == "step8" and "OTEL_PROPAGATORS" in both.carrier
    automatic = {**call, "tags": {**call["tags"], "otel.scope.name": "opentelemetry.instrumentation.requests"}}
    sent = lost(OTEL_PYTHON, OTEL_PYTHON, caller=automatic)  # an instrumentation always injects
    assert sent.title.endswith("github-proxy did not read the context gateway sent (their propagators disagree)")
    edge = {"id": "t2", "service": "traefik", "op": "ReverseProxy", "start": 1_000, "duration": 5_000}
    edge |= {"parent": "a1", "kind": "client", "tags": {"url.full": "http://127.0.0.1:8480/contributors/a/b"}}
    gateway = {"id": "g1", "service": "gateway", "op": "GET /contributors/<owner>/<repo>", "start": 2_000}
    gateway |= {"duration": 1_000, "kind": "server", "tags": {"server.port": 8480}}
    traefik = build("tttt", [{**GATEWAY, "service": "traefik", "op": "GET"}, {**edge, "process": {}}])
    (finding,) = diagnose(traefik, [build("gggg", [{**gateway, "process": OTEL_PYTHON}])])
    assert finding.title.endswith("gateway did not read the context traefik sent (their propagators disagree)")
    assert finding.lesson == "step9" and not any("inject" in what for what in finding.check)
    assert "OTEL_PROPAGATORS" in finding.check[0] and "traefik.sh" in finding.check[0]


def test_two_widths_names_its_spans_and_no_missing_parent_for_the_half_that_has_it():
    short = build("0000000000000abc", [{**GATEWAY, "id": "0000000000000001"}])
    served = {"id": "0000000000000002", "service": "proxy", "op": "stats", "start": 10, "duration": 5}
    served |= {"parent": "0000000000000001", "trace": "00000000000000010000000000000abc"}
    long = build("00000000000000010000000000000abc", [served])
    (finding,) = diagnose(long, [short])
    assert finding.kind == "two_widths" and finding.spans == ["0000000000000002"]
    assert "proxy's stats's parent 0000000000000001 is in trace 0000000000000abc" in finding.detail
    (finding,) = diagnose(short, [long])
    assert finding.kind == "two_widths" and finding.spans == ["0000000000000001"]


def test_a_real_finding_inside_a_thousand_spans():
    spans = [{**GATEWAY, "id": "root"}] + [
        {"id": f"{n:016x}", "service": "svc", "op": f"op{n % 7}", "start": n, "duration": 1, "parent": "root"}
        for n in range(1, 1000)
    ]
    spans[500] = {**spans[500], "parent": "0000000000000bad"}  # one span whose parent never came, deep inside
    (finding,) = diagnose(build("aaaa", spans))
    assert finding.kind == "missing_parent" and finding.spans == [spans[500]["id"]]


def test_otlp_json_from_another_language_through_the_receiver():
    """An OTLP JSON body as OpenTelemetry JS sends it (hex ids, its own resource), through the store's OTLP
    receiver: a Node.js service's span whose parent never arrived is named."""
    from workshop.tracestore.receivers.otlp import OtlpStats, create_app
    from workshop.tracestore.store import TraceStore

    store = TraceStore()
    resource = {
        "attributes": [
            {"key": "service.name", "value": {"stringValue": "github-proxy"}},
            {"key": "telemetry.sdk.language", "value": {"stringValue": "nodejs"}},
            {"key": "telemetry.sdk.name", "value": {"stringValue": "opentelemetry"}},
        ]
    }
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "eee19b7ec3c1b173",
        "name": "GET /stats/:owner/:repo",
        "kind": 2,
        "startTimeUnixNano": str(T0 * 1000),
        "endTimeUnixNano": str(T0 * 1000 + 5_000_000),
        "attributes": [{"key": "http.response.status_code", "value": {"intValue": "200"}}],
        "status": {},
    }
    body = {
        "resourceSpans": [
            {
                "resource": resource,
                "scopeSpans": [{"scope": {"name": "@opentelemetry/instrumentation-http"}, "spans": [span]}],
            }
        ]
    }
    answer = create_app(store, OtlpStats()).test_client().post("/v1/traces", json=body)
    assert answer.status_code == 200
    (finding,) = diagnose(store.get("5b8efff798038103d269b633813fc60c"))
    assert finding.kind == "missing_parent" and finding.spans == ["eee19b7ec3c1b174"]
    assert (
        finding.title == "github-proxy's GET /stats/:owner/:repo names a parent span eee19b7ec3c1b173 that never "
        "arrived"
    )
