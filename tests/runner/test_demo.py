"""What the demo says about its answer and the trace it prints."""

from __future__ import annotations

import io
import time

from flask import Flask, jsonify, request
from rich.console import Console

from workshop.runner.demo import Demo
from workshop.serving import serve_in_thread


def test_a_slow_answer_the_sampler_did_not_keep_is_not_said_to_be_the_trace_below(monkeypatch):
    """Lesson 6's sampling "try next": the first request took 2 s and was not kept; the one asked again
    (kept, with jaeger-debug-id) is fast. Before: "That took 2.0 s: the trace below shows where the time
    went", above the fast one's trace."""
    app = Flask(__name__)

    @app.get("/contributors/<owner>/<repo>")
    def contributors(owner, repo):
        if "jaeger-debug-id" not in request.headers:
            time.sleep(1.2)  # GitHub computing the stats: retries
            return jsonify(repo=f"{owner}/{repo}", contributors=[])
        response = jsonify(repo=f"{owner}/{repo}", contributors=[])
        response.headers["X-Trace-Id"] = "abc"
        return response

    out = io.StringIO()
    monkeypatch.setattr(Demo, "_print_trace", lambda self, trace_id: True)
    with serve_in_thread(app) as url:
        demo = Demo(Console(file=out, width=200), url, "pallets/flask", "http://unused", {"gateway"}, 1)
        assert demo.run() == (True, "abc")
    said = out.getvalue()
    assert "the trace below shows where the time went" not in said
    assert "but the sampler kept no trace of it: the one below is of the request asked again" in said


def test_the_demo_says_what_the_trace_doctor_finds_in_its_trace():
    from workshop.tracestore import model
    from workshop.tracestore.collector import CollectorConfig, running_collector

    with running_collector(CollectorConfig.on_free_ports()) as store:
        failed = model.span(
            "00000000000b0a0d",
            "00000000000b0a0d",
            "contributors",
            [],
            1_700_000_000_000_000,
            5,
            [model.tag("http.status_code", "int64", 502)],
            [],
        )
        store.store.add_spans([(failed, model.process("contributors", []))])
        said = {}
        for once in (False, True):
            out = io.StringIO()
            demo = Demo(Console(file=out, width=80), "http://unused", "a/server-error", store.url, {"contributors"}, 5)
            demo.once = once
            assert demo._print_trace("00000000000b0a0d")
            said[once] = out.getvalue()
    doctor = "✗ the trace doctor: contributors' contributors answered 502 but is not marked as an error (taught in"
    assert all(doctor in " ".join(said[once].split()) for once in said)  # wrapped at 80 columns, indented
    assert "\n    .venv/bin/python -m workshop explain 00000000000b0a0d\n" in said[False]  # whole, to copy
    assert all("\n  the lesson: step3_tags_logs/README.md\n" in said[once] for once in said)  # a path to open
    # ONCE=1 stops the store next: what explain would say comes now, and no command that would fail then
    assert "explain" not in said[True] and "  - check: span.set_tag('error', True)" in said[True]


def test_once_with_the_spans_sent_elsewhere_says_why_waits_for_the_trace_and_fails():
    """Lesson 7's "send the spans where nothing listens" with ONCE=1: why its trace is missing comes first; the
    demo waits for it as ever (the services' "spans dropped" lines come meanwhile), then says it did not
    arrive, and the run fails. (Without ONCE, test_run's lesson 7 run keeps running.)"""
    from workshop.tracestore.collector import CollectorConfig, running_collector

    app = Flask(__name__)

    @app.get("/contributors/<owner>/<repo>")
    def contributors(owner, repo):
        response = jsonify(repo=f"{owner}/{repo}", contributors=[])
        response.headers["X-Trace-Id"] = "00000000000e15e1"
        return response

    elsewhere = "The spans go to http://localhost:9 (OTEL_EXPORTER_OTLP_ENDPOINT), where nothing listens"
    out = io.StringIO()
    with serve_in_thread(app) as url, running_collector(CollectorConfig.on_free_ports()) as store:
        demo = Demo(Console(file=out, width=200), url, "a/b", store.url, {"gateway"}, 0.5, True, elsewhere)
        assert demo.run() == (False, "00000000000e15e1")
    said = out.getvalue()
    assert said.index(elsewhere) < said.index(f"trace 00000000000e15e1 did not arrive at {store.url} within 0.5 s")
