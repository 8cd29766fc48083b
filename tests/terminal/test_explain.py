"""`python -m workshop explain`: the trace doctor in the terminal, against a store over HTTP (in-process: the
command's own code path, `main`, without starting an interpreter for each)."""

from __future__ import annotations

import json
import time

import pytest

from workshop.cli import main
from workshop.tracestore import model
from workshop.tracestore.collector import CollectorConfig, running_collector


def hop(number: int, at: int) -> list[model.SpanRecord]:
    """One request of lesson 5 with the job's context lost: the gateway's trace and the worker's."""
    gateway, worker = model.process("gateway", []), model.process("worker", [])
    sender, handler = f"{number:014x}a1", f"{number:014x}b1"
    kind = model.string_tag
    return [
        (model.span(sender, sender, "contributors", [], at, 10_000, [kind("span.kind", "server")], []), gateway),
        (
            model.span(
                sender,
                f"{number:014x}a2",
                "send_clean_job",
                [model.reference("CHILD_OF", sender, sender)],
                at + 5_000,
                4_000,
                [kind("span.kind", "producer"), kind("message_bus.destination", "jobs")],
                [],
            ),
            gateway,
        ),
        (
            model.span(
                handler,
                handler,
                "handle_clean_job",
                [],
                at + 8_000,
                1_000,
                [kind("span.kind", "consumer"), kind("message_bus.destination", "jobs")],
                [],
            ),
            worker,
        ),
    ]


@pytest.fixture(scope="module")
def store():
    """An old broken hop (about 20 minutes ago), then 250 newer requests (more than any one search's default),
    2 of them broken too."""
    now = int(time.time() * 1_000_000)
    with running_collector(CollectorConfig.on_free_ports()) as collector:
        records = hop(1, now - 1_170_000_000)  # 19.5 minutes ago
        for n in range(2, 252):
            at = now - (300 - n) * 100_000
            records += hop(n, at) if n % 100 == 0 else hop(n, at)[:1]
        collector.store.add_spans(records)
        yield collector


def test_an_old_lost_hop_is_found_and_its_other_trace_is_a_link(store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["explain", "00000000000001a1", "--query-url", store.url]) == 1
    out = capsys.readouterr().out
    assert "worker's handle_clean_job started a trace of its own 3 ms into gateway's" in out
    assert f"\n  the other trace:\n    {store.url}/trace/00000000000001b1\n" in out
    assert "\n  the lesson: step5_queue/README.md\n" in out
    assert max(len(line) for line in out.splitlines() if store.url not in line) <= 80


def test_recent_counts_a_broken_request_once_and_says_since_when(store, capsys):
    assert main(["explain", "--recent", "1000", "--query-url", store.url]) == 1
    out = capsys.readouterr().out
    assert "the newest 254 traces, which began in the last 20 minutes:" in out  # (unless this took 30 s)
    assert "✗ 3 requests lost the trace context between gateway and worker (6 traces)" in out
    assert main(["explain", "--recent", "1000", "--json", "--query-url", store.url]) == 1
    said = json.loads(capsys.readouterr().out)
    assert said["since"] == "in the last 20 minutes" and said["groups"][0]["count"] == 3


@pytest.mark.parametrize("count", ["-3", "0", "many", "10001"])
def test_recent_wants_a_number_of_traces(count, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["explain", "--recent", count])
    assert stopped.value.code == 2
    assert f"argument --recent: a number of traces from 1 to 10,000, not '{count}'" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["abc?x=1", "../api/services", "00000000000000000000000000000000000", ""])
def test_a_trace_id_is_checked_before_anything_is_asked(bad, capsys):
    nobody = "http://127.0.0.1:9"  # nothing answers: the id is refused first
    assert main(["explain", bad, "--query-url", nobody]) == 2
    said = capsys.readouterr().err
    assert said.startswith("error: ") and ("not a trace id" in said or "needs a trace id" in said), said
