"""Running a lesson on its default ports (as its README says) without taking them from anything else
on this machine: a network namespace of its own, with only a loopback, and a PID namespace so nothing
started there outlives the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.ci import require
from tests.support.stage_loader import ROOT

UNSHARE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]


def own_network_available() -> str | None:
    """None if namespaces can be made here, else why not."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs Linux with unshare and ip (util-linux, iproute2)"
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        return f"cannot make a network namespace here (root needed): {probe.stderr.strip()}"
    return None


def require_own_network() -> None:
    """Skip, saying why, where namespaces cannot be made; in CI that is a failure, not a skip."""
    require(own_network_available(), "this test")


def run_in_own_network(script: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """A bash script, its loopback up, in namespaces of its own: everything it starts dies with it."""
    # as from a learner's shell: not inside `make test`'s make (whose variables make a `make` in the script
    # print "Entering directory" lines)
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    # make's VENV: the one this test runs in, whatever its name (`make test-pythons` runs the suite in
    # .venv-3.X, and its make exports VENV=.venv-3.X to us); a copy's own .venv (linked to it, or none yet)
    env["VENV"] = str(Path(sys.prefix)) if Path(cwd).resolve() == ROOT.resolve() else ".venv"
    return subprocess.run(
        [*UNSHARE, "bash", "-c", "set -e; ip link set lo up\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def repository_copy(destination: Path, venv: bool = True) -> Path:
    """The repository's files (as a clone has them, with their times, so the venv stamp stays newer)
    and its .venv, linked (unless venv=False): a copy a test may edit as a learner edits theirs."""
    files = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    listed = subprocess.run(files, cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, target = ROOT / name, destination / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    if venv:
        (destination / ".venv").symlink_to(Path(sys.prefix))
    return destination


def lesson_session(run: str, requests_and_count: list[str], log: str, settle_s: float = 5) -> str:
    """Start the lesson as the README says, wait for `Running.` and `settle_s` more (lesson 6's tracers ask
    for their sampling strategy meanwhile), then send and count."""
    return f"""
set -m
COLUMNS=80 {run} > {log} 2>&1 < /dev/null &
runner=$!
for _ in $(seq 120); do grep -q '^Running\\.' {log} && break; sleep 0.25; done
grep -q '^Running\\.' {log}
sleep {settle_s:g}
start=$EPOCHREALTIME
{requests_and_count[0]}
echo "sent from $start to $EPOCHREALTIME"
{requests_and_count[1]}
kill -INT -- -$runner
wait $runner || true
"""
