"""Lesson 8's "try next: sample the standard way", run exactly as its README says (OTEL_TRACES_SAMPLER,
50 requests, the count), on the lesson's default ports in a network namespace of its own."""

from __future__ import annotations

import re

from tests.support.netns import lesson_session, repository_copy, require_own_network, run_in_own_network
from tests.support.stage_loader import ROOT

README = ROOT / "step8_opentelemetry" / "README.md"


def test_a_tenth_of_the_traces_is_kept_as_the_readme_says(tmp_path):
    require_own_network()
    text = README.read_text()
    section = text[text.index("### Sample the standard way") : text.index("### One service at a time")]
    blocks = [block.strip().splitlines() for block in re.findall(r"```\n(.*?)```", section, re.DOTALL)]
    run, requests_and_count = blocks[0][0], blocks[1]
    assert run == "OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1 make step8"
    repo = repository_copy(tmp_path / "repo")
    result = run_in_own_network(lesson_session(run, requests_and_count, "run.log", settle_s=0), repo, timeout=90)
    log = (repo / "run.log").read_text() if (repo / "run.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log
    (count,) = [int(n) for n in re.findall(r"^(\d+) traces with a span of gateway", result.stdout, re.MULTILINE)]
    assert 1 <= count < 21, result.stdout  # the demo's and about 5 of 50 (20 or more: a 1-in-10^7 draw)
    assert re.search(r"^trace [0-9a-f]{32} .*\d+ spans$", log, re.MULTILINE), log  # the demo's trace, shown
    assert "3 services: gateway, github-proxy, worker" in log
