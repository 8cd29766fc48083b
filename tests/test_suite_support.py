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
