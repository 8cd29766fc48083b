"""`make diff-stepN` (`python -m workshop diff stepN`): each lesson's diff from the one before, code first."""

from __future__ import annotations

import pytest

from tests.support.processes import run_workshop, runner_env
from workshop.lessons.diff import changed_files
from workshop.lessons.stages import find_stage


def test_diff_shows_one_lesson_code_first_readme_last():
    result = run_workshop("diff", "step3", env=runner_env())
    assert result.returncode == 0
    assert result.stdout.startswith("# What step3 changes (the code, then the README): diff -ru step2_spans")
    assert "+from opentracing.ext import tags" in result.stdout
    files = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("+++ ")]
    assert files[-1] == "step3_tags_logs/README.md" and "step3_tags_logs/app.py" in files
    code = run_workshop("diff", "step3", "--code", env=runner_env()).stdout
    assert "README.md" not in code and "+from opentracing.ext import tags" in code


def test_diff_on_a_terminal_is_coloured_and_paged():
    """Under a pseudo-terminal, as a learner runs it: colours, and through $PAGER (here `cat`)."""
    import os
    import pty
    import subprocess
    import sys

    from tests.support.stage_loader import ROOT

    controller, terminal = pty.openpty()
    env = {**runner_env(), "PAGER": "cat"}
    process = subprocess.Popen(
        [sys.executable, "-m", "workshop", "diff", "step3", "--code"],
        cwd=ROOT,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=30) == 0
    os.close(controller)
    text = output.decode()
    assert "\x1b[32m+from opentracing.ext import tags\x1b[0m" in text


@pytest.mark.parametrize(
    "stage, files",
    [
        ("step2", {"app.py", "tracing.py", "tracing_fixes.py", "README.md"}),
        ("step3", {"app.py", "tracing.py", "README.md"}),
        ("step4", {"app.py", "github_proxy.py", "Procfile", "README.md"}),
        ("step5", {"app.py", "worker.py", "Procfile", "README.md"}),
        ("step6", {"app.py", "github_proxy.py", "worker.py", "tracing.py", "README.md"}),
        ("step7", {"app.py", "github_proxy.py", "worker.py", "tracing.py", "tracing_fixes.py", "README.md"}),
        ("step8", {"app.py", "github_proxy.py", "worker.py", "tracing.py", "tracing_fixes.py", "README.md"}),
        (
            "step9",
            {
                "github_proxy.py",
                "Procfile",
                "README.md",
                "traefik.sh",
                "routes.yml",
                "github-proxy/package.json",
                "github-proxy/package-lock.json",
                "github-proxy/server.js",
                "github-proxy/tracing.js",
                "github-proxy/test/server.test.js",
            },
        ),
    ],
)
def test_each_lesson_changes_only_its_files(stage, files):
    new = find_stage(stage)
    old = find_stage(f"step{new.number - 1}")
    assert changed_files(old, new) == files
