"""The trace viewer's pages over HTTP (Flask's test client), on traces sent over UDP by real tracers."""

from __future__ import annotations

import re
import socket
import time

import pytest
from flask.testing import FlaskClient
from opentracing import follows_from

from tests.support.stage_loader import ROOT
from tests.support.udp_capture import close, jaeger_tracer
from workshop.tracestore import model
from workshop.tracestore.app import create_app
from workshop.tracestore.collector import CollectorConfig, running_collector

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture(scope="module")
def held():
    """A store with three traces: gateway -> github-proxy (slow, with a log), an error, a FOLLOWS_FROM."""
    with running_collector(CollectorConfig.on_free_ports()) as collector:
        gateway, proxy = (
            jaeger_tracer("gateway", collector.jaeger_compact_port),
            jaeger_tracer("github-proxy", collector.jaeger_compact_port),
        )
        ids = {}
        with gateway.start_active_span("contributors") as root:
            root.span.set_tag("github.repo", "pallets/flask")
            root.span.log_kv({"event": "baggage", "key": "client", "value": "my laptop"})
            with gateway.start_active_span("call_github_proxy") as call:  # noqa: SIM117 (the context is needed)
                with proxy.start_active_span("stats", child_of=call.span.context) as served:
                    served.span.set_tag("baggage.client", "my laptop")
                    served.span.log_kv({"event": "retry", "wait_s": 1.0, "stack": "line 1\nline 2"})
                    time.sleep(0.12)
            ids["slow"] = f"{root.span.trace_id:016x}"
        with gateway.start_active_span("contributors") as failed:
            failed.span.set_tag("error", True)
            ids["error"] = f"{failed.span.trace_id:016x}"
        with gateway.start_active_span("send_clean_job") as send:
            ids["follows"] = f"{send.span.trace_id:016x}"
            proxy.start_span("later", references=[follows_from(send.span.context)]).finish()
        close(gateway)
        close(proxy)
        deadline = time.monotonic() + 5
        while collector.store.trace_count() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield create_app(collector.store, collector.statistics).test_client(), ids, collector


def page(client: FlaskClient, path: str, status: int = 200) -> str:
    response = client.get(path, headers=HTML)
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_search_lists_the_traces_newest_first_with_their_summary(held):
    client, ids, _ = held
    html = page(client, "/search?service=gateway")
    table = html.index('<table class="traces"')
    positions = [html.index(ids[name], table) for name in ("follows", "error", "slow")]
    assert positions == sorted(positions)  # newest first
    start = html.index(f'value="{ids["slow"]}"')
    row = html[start : html.index("</tr>", start)]
    assert "gateway</b> contributors" in row and "github-proxy" in row and re.search(r">1\d\dms<", row)
    assert "<option selected>gateway</option>" in html and "<option>github-proxy</option>" in html
    assert "<svg" in html and html.count("<rect") == 3  # the durations chart


def test_search_filters_and_a_bad_query_is_a_readable_400(held):
    client, ids, _ = held
    errors = page(client, '/search?service=gateway&tags={"error":"true"}')
    assert ids["error"] in errors and ids["slow"] not in errors
    slow = page(client, "/search?service=gateway&minDuration=100ms")
    assert ids["slow"] in slow and ids["error"] not in slow
    operation = page(client, "/search?service=gateway&operation=send_clean_job")
    assert ids["follows"] in operation and ids["slow"] not in operation
    bad = page(client, "/search?service=gateway&minDuration=soon", status=400)
    assert "parameter &#39;minDuration&#39;: not a duration" in bad and "Traceback" not in bad
    nothing = page(client, "/search?service=nobody")
    assert "No trace of <b>nobody</b> matches" in nothing


def test_the_trace_page_holds_every_span_with_its_details(held):
    client, ids, _ = held
    html = page(client, f"/trace/{ids['slow']}")
    for service, operation in [
        ("gateway", "contributors"),
        ("gateway", "call_github_proxy"),
        ("github-proxy", "stats"),
    ]:
        assert re.search(rf'class="service">{service}</span>\s*<span class="operation">{operation}<', html)
    assert "3 spans" in html and "depth 3" in html and "2 services" in html
    assert "github.repo</th><td>pallets/flask" in html  # tags
    assert "<caption>+" in html and "wait_s</th><td><pre>1.0</pre>" in html  # a log, at its offset
    assert "<pre>line 1\nline 2</pre>" in html  # a multi-line value, kept readable
    # baggage: the gateway's, set (a log), and the proxy's, read (a tag), each shown as its value
    assert html.count("client</th><td>my laptop</td>") == 2 and "event=baggage" not in html
    assert "jaeger.version" in html  # the process
    assert f'href="/api/traces/{ids["slow"]}?prettyPrint=true"' in html  # its JSON, for Jaeger UI's Upload


def test_errors_and_follows_from_are_marked(held):
    client, ids, _ = held
    assert '<span class="badge error">1 error</span>' in page(client, f"/trace/{ids['error']}")
    follows = page(client, f"/trace/{ids['follows']}")
    assert "⇢ follows from" in follows and 'class="bar follows"' in follows


def test_unknown_and_invalid_trace_ids_get_a_page_that_says_so(held):
    client, *_ = held
    missing = page(client, "/trace/00000000deadbeef", status=404)
    assert "No trace 00000000deadbeef here" in missing and "TRACE_STORE_FILE" in missing
    assert "not a trace id" in page(client, "/trace/not-hex", status=400)


def test_compare_two_traces_span_by_span(held):
    client, ids, _ = held
    html = page(client, f"/trace/{ids['slow']}...{ids['error']}")
    assert "Two traces, span by span" in html and ids["slow"] in html and ids["error"] in html
    assert html.count("only in A") == 2  # call_github_proxy and stats: the error trace has neither
    redirect = client.get(f"/compare?trace={ids['slow']}&trace={ids['error']}", headers=HTML)
    assert redirect.status_code == 302 and redirect.location.endswith(f"/trace/{ids['slow']}...{ids['error']}")
    assert "exactly two traces" in page(client, f"/compare?trace={ids['slow']}", status=400)


def test_dependencies_are_drawn(held):
    client, *_ = held
    html = page(client, "/dependencies")
    assert "<svg" in html and ">gateway</text>" in html and ">github-proxy</text>" in html
    assert "2 calls</text>" in html and "marker-end" in html  # the call, and the span that follows from one


def test_the_store_s_root_is_json_for_curl_and_the_search_page_for_a_browser(held):
    client, *_ = held
    assert client.get("/").json["traces"] == 3
    assert "Find traces" in page(client, "/")


def test_the_results_alone_for_the_live_search(held):
    client, ids, _ = held
    response = client.get("/search/results?service=gateway", headers=HTML)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and not html.lstrip().startswith("<!doctype")
    assert f'data-signature="{ids["follows"]},{ids["error"]},{ids["slow"]}"' in html


def test_no_page_is_a_500_for_odd_input(held):
    client, *_ = held
    for path in [
        "/search?limit=0",
        "/search?limit=99999999999999999999",
        "/search?lookback=1e309h",
        "/search?tags=" + "[" * 2000,
        "/trace/" + "a" * 5000,
        "/trace/...",
        "/trace/a...b...c",
        "/search?service=%00",
        "/compare",
    ]:
        assert client.get(path, headers=HTML).status_code in (200, 302, 400, 404), path


def test_the_receivers_page_says_what_each_receiver_took_and_turned_away(held):
    client, _, collector = held
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as garbage:
        garbage.sendto(b"not thrift", ("127.0.0.1", collector.jaeger_binary_port))
    deadline = time.monotonic() + 5
    while collector.jaeger_binary_receiver.stats.malformed < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    html = page(client, "/receivers")
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr><td>.*?</tr>", html)
        )
    }
    spans = collector.jaeger_compact_receiver.stats.spans
    assert spans >= 4
    assert rows["Jaeger compact Thrift"][1:] == [
        f"{collector.jaeger_compact_port}/udp JAEGER_AGENT_PORT",
        str(spans),
        "nothing",
    ]
    assert rows["Jaeger binary Thrift"][1:] == [
        f"{collector.jaeger_binary_port}/udp JAEGER_BINARY_PORT",
        "0",
        "1 malformed datagrams",
    ]
    assert rows["OTLP/HTTP"][1:3] == [f"{collector.otlp_http_port}/tcp OTLP_HTTP_PORT", "0"]
    assert rows["Zipkin v2 JSON"][1:3] == [f"{collector.zipkin_port}/tcp ZIPKIN_PORT", "0"]
    assert 'href="/api/stats"' in html and 'aria-current="page">Receivers' in html


def test_the_trace_page_says_what_is_wrong_only_when_something_is(held):
    client, ids, collector = held
    assert "What's wrong with this trace?" not in page(client, f"/trace/{ids['slow']}")
    sender = model.span(
        "00000000000000e1",
        "00000000000000e1",
        "send_clean_job",
        [],
        1_700_000_000_000_000,
        4000,
        [model.string_tag("span.kind", "producer"), model.string_tag("message_bus.destination", "q")],
        [],
    )
    worker = model.span(
        "00000000000000e2",
        "00000000000000e2",
        "handle_clean_job",
        [],
        1_700_000_000_003_000,
        100,
        [model.string_tag("span.kind", "consumer"), model.string_tag("message_bus.destination", "q")],
        [],
    )
    gateway, helper = model.process("gateway", []), model.process("worker", [])
    collector.store.add_spans([(sender, gateway), (worker, helper)])
    html = page(client, "/trace/00000000000000e1")
    assert "What's wrong with this trace?" in html and 'data-kind="lost_context"' in html
    assert "worker&#39;s handle_clean_job started a trace of its own 3 ms into gateway&#39;s send_clean_job" in html
    assert 'href="/trace/00000000000000e2"' in html and "step5_queue/README.md" in html
    assert 'href="/trace/00000000000000e1...00000000000000e2"' in html  # both, side by side
    # an older broken hop, with more than a search's worth of newer traces since: still found (the doctor reads
    # the traces of the trace's own time, not the newest)
    old = 1_600_000_000_000_000
    collector.store.add_spans(
        [
            ({**sender, "traceID": "00000000000000f1", "spanID": "00000000000000f1", "startTime": old}, gateway),
            ({**worker, "traceID": "00000000000000f2", "spanID": "00000000000000f2", "startTime": old + 3_000}, helper),
        ]
        + [
            (model.span(f"{n:016x}", f"{n:016x}", "newer", [], old + 60_000_000 + n, 5, [], []), gateway)
            for n in range(0x100, 0x100 + 250)
        ]
    )
    html = page(client, "/trace/00000000000000f1")
    assert 'data-kind="lost_context"' in html and 'href="/trace/00000000000000f2"' in html
    assert "<code>step5_queue/README.md</code>" in html  # this store serves no docs: the path, not a link


def test_the_lessons_readmes_are_pages_when_the_store_serves_them_and_nothing_else_is(held):
    """`collector --docs <repository>`: the doctor's lesson is a link to its README, rendered; only .md files
    under that folder are served."""
    _, _, collector = held
    failed = model.span("00000000000000d1", "00000000000000d1", "GET /x", [], 1_700_000_000_000_000, 5, [], [])
    failed["tags"].append(model.tag("http.status_code", "int64", 503))  # not marked as an error: lesson 3
    collector.store.add_spans([(failed, model.process("edge", []))])
    docs = create_app(collector.store, collector.statistics, docs=ROOT).test_client()
    html = page(docs, "/trace/00000000000000d1")
    assert '<a href="/docs/step3_tags_logs/README.md">step3_tags_logs/README.md</a>' in html
    readme = page(docs, "/docs/step3_tags_logs/README.md")
    assert "<h1>" in readme and "<code>step3_tags_logs/README.md</code>" in readme and "<pre><code" in readme
    for path in ("../README.md", "step5_queue/app.py", "%2e%2e/%2e%2e/etc/passwd.md", "no_such/README.md"):
        assert "Not found" in page(docs, f"/docs/{path}", status=404)
    outside = ROOT.parent / f"{ROOT.name}-outside.md"  # a Markdown file beside the repository, reached by ..
    assert "Not found" in page(docs, f"/docs/../{outside.name}", status=404)
    assert "serves no docs" in page(held[0], "/docs/step5_queue/README.md", status=404)
