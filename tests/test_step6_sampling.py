"""Lesson 6's "try next: sample appropriately", run exactly as its README says: the edit in tracing.py,
`make step6` with each strategies file, 50 requests, the count. On the lesson's default ports (the
tracer asks port 5778 for its strategy, which jaeger-client cannot be told otherwise), in a network
namespace of its own."""

from __future__ import annotations

import re
import shlex
from concurrent.futures import ThreadPoolExecutor

from tests.support.netns import lesson_session, repository_copy, require_own_network, run_in_own_network
from tests.support.stage_loader import ROOT

README = ROOT / "step6_baggage" / "README.md"


def section() -> str:
    text = README.read_text()
    return text[text.index("### Try next: sample appropriately") :]


def readme_steps() -> tuple[str, str, list[str], list[str]]:
    """The line to replace, its replacement, the two `make step6` commands, and the commands that send
    the requests and count the traces."""
    text = section()
    old = re.search(r"replace the line `(.+?)` with", text).group(1)
    new = re.search(r"```python\n\s*(.+?)\n\s*```", text).group(1)
    shell = re.sub(r"```python.*?```", "", text, flags=re.DOTALL)
    blocks = [block.strip().splitlines() for block in re.findall(r"```\n(.*?)```", shell, re.DOTALL)]
    second = re.search(r"start it with `(SAMPLING_STRATEGIES_FILE=\S+ make step6)`", text).group(1)
    runs = [blocks[0][0].strip(), second]
    return old, new, runs, [line.strip() for line in blocks[1]]


def test_remote_sampling_keeps_a_tenth_then_two_a_second_as_the_readme_says(tmp_path):
    require_own_network()
    old, new, runs, requests_and_count = readme_steps()
    assert runs[0].startswith("SAMPLING_STRATEGIES_FILE=sampling/gateway-10-percent.json make step6")
    repo = repository_copy(tmp_path / "repo")
    tracing = repo / "step6_baggage" / "tracing.py"
    source = tracing.read_text()
    assert source.count(old) == 1, f"the README's line {old!r} is not in tracing.py"
    tracing.write_text(source.replace(old, new))

    # the two strategies at once, each lesson in a network namespace of its own (same ports, no clash)
    names = ("percent", "rate")
    with ThreadPoolExecutor(2) as pool:
        sessions = [
            pool.submit(run_in_own_network, lesson_session(run, requests_and_count, f"{name}.log"), repo, 120)
            for run, name in zip(runs, names, strict=True)
        ]
        results = [session.result() for session in sessions]
    logs = {name: (repo / f"{name}.log").read_text() for name in names if (repo / f"{name}.log").exists()}
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr + "\n".join(logs.values())
    stdout = "".join(result.stdout for result in results)

    counts = [int(n) for n in re.findall(r"^(\d+) traces with a span of gateway", stdout, re.MULTILINE)]
    sent = re.findall(r"^sent from ([\d.]+) to ([\d.]+)$", stdout, re.MULTILINE)
    seconds = [float(end) - float(start) for start, end in sent]
    assert len(counts) == 2 and len(seconds) == 2, stdout
    for log in logs.values():
        assert re.search(r"^trace [0-9a-f]{16} .*\d+ spans$", log, re.MULTILINE), log  # the demo's trace, shown
        assert "3 services: gateway, github-proxy, worker" in log
    # 10%: the demo's trace and about 5 of the 50 (20 or more would be a 1-in-10^7 draw)
    assert 1 <= counts[0] < 21, stdout
    # at most 2 a second, and one more the limiter starts with, and the demo's
    assert 1 <= counts[1] <= 2 * seconds[1] + 4, stdout
    assert shlex.split(requests_and_count[1])[-1] == "--count"
