"""The load generator (`python -m workshop load`, `make load`) against a running lesson."""

from __future__ import annotations

import bisect
import math
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.support.processes import runner_env, stage_processes
from tests.support.stage_loader import ROOT
from workshop.errors import WorkshopError
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.load import check_target, run_load
from workshop.serving import serve_in_thread
from workshop.tracestore import model
from workshop.tracestore.collector import CollectorConfig, running_collector
from workshop.tracestore.query import TraceQuery
from workshop.tracestore.spanmetrics import BOUNDS_MS


@pytest.fixture(scope="module")
def lesson3():
    with (
        serve_in_thread(create_app(FakeGitHubConfig(computing_calls=0, rate_limit=100_000))) as github,
        running_collector(CollectorConfig.on_free_ports()) as store,
        stage_processes("step3_tags_logs", github, store.ports) as app,
    ):
        yield app.url, store


def test_only_this_machine_unless_asked():
    assert check_target("http://127.0.0.1:8480/", False) == "http://127.0.0.1:8480"
    assert check_target("http://localhost:8480", False) == "http://localhost:8480"
    for url in ("http://10.1.2.3:8480", "http://192.168.0.7", "ftp://127.0.0.1"):
        with pytest.raises(WorkshopError):
            check_target(url, False)
    assert check_target("http://10.1.2.3:8480", True) == "http://10.1.2.3:8480"


@pytest.mark.parametrize(
    "arguments, said",
    [
        (["--rate", "nan"], "--rate is requests a second: a number more than 0, at most 200 (not nan)"),
        (["--rate", "inf"], "(not inf)"),
        (["--rate", "0"], "(not 0)"),
        (["--duration", "0.5s", "--rate", "1"], "1 a second for 0.5 s is not one request: give a longer --duration"),
        (["--duration", "11m"], "--duration is more than 0 and at most 10 minutes"),
        (["--duration", "soon"], "--duration: "),
        (["--concurrency", "0"], "--concurrency is from 1 to 64 (not 0)"),
        (["http://10.1.2.3:8480"], "is not this machine"),
    ],
)
def test_bad_arguments_are_refused_before_any_plan_is_printed(capsys, arguments, said):
    from workshop.cli import main

    url = [] if arguments[0].startswith("http") else ["http://127.0.0.1:9"]  # (nothing is ever sent to it)
    assert main(["load", *url, *arguments]) == 2
    out, err = capsys.readouterr()
    assert out == "" and said in err and "Traceback" not in err  # no "0 requests to ..." before the error


def test_when_nothing_answers_it_says_so_and_exits_1(capsys):
    from workshop.cli import main
    from workshop.ports import free_port

    nobody = f"http://127.0.0.1:{free_port()}"  # a port nothing listens on: every request refused
    assert main(["load", nobody, "--rate", "20", "--duration", "0.1s"]) == 1
    out = capsys.readouterr().out
    assert "refused × 2" in out and f"no request was answered: nothing answers at {nobody}" in out


def test_make_load_passes_concurrency():
    dry = subprocess.run(["make", "-n", "load", "CONCURRENCY=3"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert '--concurrency "3"' in dry.stdout


def test_a_steady_rate_every_answer_counted_and_the_slowest_traced(lesson3):
    url, _ = lesson3
    mix = [("pallets/flask", 3), ("a/does-not-exist", 1), ("a/server-error", 1)]
    seen = []
    summary = run_load(url, rate=20, duration_s=1.0, concurrency=4, on_answer=seen.append, seed=1, mix=mix)
    assert summary.sent == 20 and len(summary.answers) == 20 == len(seen) and not summary.stopped
    statuses = summary.by_status()
    assert set(statuses) <= {"200", "404", "502"} and statuses.get("200", 0) >= 5
    assert set(summary.percentiles_ms()) == {"p50", "p95", "p99"}
    assert all(len(answer.trace_id) == 16 for answer in summary.slowest())  # lesson 3 says its trace id


def test_ctrl_c_stops_it_with_a_summary(lesson3):
    url, store = lesson3
    env = runner_env(JAEGER_QUERY_PORT=str(store.query_port))
    load = subprocess.Popen(
        [sys.executable, "-m", "workshop", "load", url, "--rate", "5", "--duration", "30s"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = load.stdout.readline()  # it has started sending
    assert "150 requests to" in first, first
    time.sleep(1)  # a few requests in (the run would last 30 s)
    load.send_signal(signal.SIGINT)
    output, _ = load.communicate(timeout=30)
    assert load.returncode == 130, output
    assert "(stopped with Ctrl-C)" in output and "by status:" in output and "/monitor" in output


def test_the_span_metrics_after_a_load_are_the_traces_numbers(lesson3):
    """Calls and errors as the stored traces count them, and the p95 in the bucket of the traces' own p95."""
    url, store = lesson3
    mix = [("pallets/flask", 3), ("a/server-error", 1), ("a/empty", 1)]
    run_load(url, rate=20, duration_s=1.0, concurrency=4, seed=2, mix=mix)
    spans = settled_server_spans(store)
    end_ms = int(time.time() * 1000)
    window = {
        "service": "contributors",
        "endTs": str(end_ms),
        "lookback": "600000",
        "step": "600000",
        "ratePer": "600000",
    }

    def last(what: str, **more: str) -> float:
        answer = requests.get(f"{store.url}/api/metrics/{what}", params={**window, **more}, timeout=5).json()
        return answer["metrics"][0]["metricPoints"][-1]["gaugeValue"]["doubleValue"]

    # a rate is over the time its window covers: whole 30-second buckets, up to now (the store's clock)
    covered_s = end_ms / 1000 - math.ceil((end_ms - 600_000) / 30_000) * 30
    assert last("calls") * covered_s == pytest.approx(len(spans), rel=0.01)
    assert last("errors") == pytest.approx(sum(model.is_error(span) for span in spans) / len(spans))
    durations_ms = sorted(span["duration"] / 1000 for span in spans)
    exact = durations_ms[math.ceil(0.95 * len(durations_ms)) - 1]
    estimate = last("latencies", quantile="0.95")
    bucket = bisect.bisect_left(BOUNDS_MS, exact)
    lower, upper = (BOUNDS_MS[bucket - 1] if bucket else 0), BOUNDS_MS[min(bucket, len(BOUNDS_MS) - 1)]
    assert lower <= estimate <= upper, (exact, estimate)  # within the histogram's bucket error


def settled_server_spans(store, quiet_s: float = 0.5, timeout_s: float = 10) -> list[model.Json]:
    """The store's server spans, once no new span has arrived for `quiet_s` (they come over UDP, in batches)."""
    deadline, count, spans = time.monotonic() + timeout_s, -1, []
    while time.monotonic() < deadline:
        found = store.store.find(TraceQuery(service="contributors", limit=100_000))
        spans = [span for trace in found for span in trace["spans"] if model.span_kind(span) == "server"]
        if len(spans) == count:
            break
        count = len(spans)
        time.sleep(quiet_s)
    return spans
