"""The room with no network: a fresh clone installs from a wheelhouse (made here for this machine's platform
by `.ci/run`, which has the package registries) in a network namespace with no route out; then `make doctor`
passes and lesson 9, the one needing Python, Node.js and Traefik, runs with no network.

An install test, not part of `make test` (which needs no network, and has a time budget): `.ci/run` makes the
wheelhouse, then runs it with `make test-wheelhouse WHEELHOUSE=<folder>`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.support.ci import require
from tests.support.netns import repository_copy, require_own_network, run_in_own_network

WHEELHOUSE = os.environ.get("WORKSHOP_TEST_WHEELHOUSE")
MISSING = (
    "needs a wheelhouse for this machine, made with the network: `make wheelhouse PLATFORMS=here "
    "WHEELHOUSE=<folder>`, then make test-wheelhouse WHEELHOUSE=<folder> (.ci/run does both)"
)


@pytest.mark.wheelhouse
def test_a_fresh_clone_installs_from_the_wheelhouse_and_runs_with_no_network(tmp_path):
    require(None if WHEELHOUSE and (Path(WHEELHOUSE) / "python").is_dir() else MISSING, "the offline install")
    require_own_network()
    repo = repository_copy(tmp_path / "repo", venv=False)
    python = getattr(sys, "_base_executable", sys.executable)  # the Python this machine's wheelhouse is for
    script = f"""
test -z "$(ip route)"  # no route out, only the loopback
! python3 -c 'import socket; socket.create_connection(("pypi.org", 443), 3)' 2>/dev/null
make setup PYTHON={python} WHEELHOUSE={WHEELHOUSE}
echo "== doctor"
make doctor
echo "== step9"
COLUMNS=80 make step9 ONCE=1
"""
    result = run_in_own_network(script, cwd=repo, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    doctor = output.split("== doctor")[1].split("== step9")[0].splitlines()
    assert doctor[-1] == "✓ every lesson (1–9) can run here", doctor
    assert "✓ venv: .venv, Python" in output and "✓ Traefik: Traefik 3.7.15 (.venv/bin/traefik)" in output
    assert (repo / ".venv/bin/traefik").exists()
    assert (repo / "step9_edge_polyglot/github-proxy/node_modules/.workshop-installed").is_file()
    step9 = output.split("== step9")[1]
    assert "200 OK" in step9 and "17 spans" in step9, step9[-3000:]
    assert "4 services: gateway, github-proxy, traefik, worker" in step9
