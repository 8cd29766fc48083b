"""The load generator (`python -m workshop load`, `make load`) against a running lesson."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.support.processes import runner_env, stage_processes
from tests.support.stage_loader import ROOT
from workshop.errors import WorkshopError
from workshop.fake_github import FakeGitHubConfig, create_app
from workshop.load import check_target, run_load
from workshop.serving import serve_in_thread
from workshop.tracestore.collector import CollectorConfig, running_collector


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
