"""The suite's own helpers hold beside another clone's suite on the same machine."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.stage_loader import ROOT

PICK = "from tests.support.processes import distinct_free_ports as d; print(*d(3), flush=True); input()"


def test_two_suites_workers_of_the_same_number_never_pick_the_same_ports():
    """Two clones' `gw0` draw from the same block of ports: before, both picked its first free ones."""
    env = {**os.environ, "PYTEST_XDIST_WORKER": "gw7"}
    pickers = [
        subprocess.Popen(
            [sys.executable, "-c", PICK], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        first, second = (set(map(int, picker.stdout.readline().split())) for picker in pickers)
    finally:
        for picker in pickers:
            picker.communicate("\n", timeout=10)
    assert len(first) == len(second) == 3 and not first & second


def test_a_process_the_suite_starts_gets_ctrl_c_as_usual():
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30).stdout == "True\n"


def test_a_suite_started_in_the_background_still_gives_its_processes_ctrl_c():
    """`bash -c 'make test & ...'` ignores SIGINT in the suite (no job control), and so, before, in every
    lesson process it started: test_ctrl_c_flushes_too waited 30 s for an app that ignored its SIGINT."""
    probe = "tests/test_suite_support.py::test_a_process_the_suite_starts_gets_ctrl_c_as_usual"
    pytest_run = f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:xdist {probe}"
    result = subprocess.run(
        ["bash", "-c", f"set +m; {pytest_run} & wait $!"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
