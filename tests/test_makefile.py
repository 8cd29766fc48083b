"""The Makefile as a learner meets it: typos, `make help` at 80 columns, the first `make` with no network."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.netns import require_own_network, run_in_own_network
from tests.support.stage_loader import ROOT


def make(*args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run(["make", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "typed, said",
    [
        ("setp3", "no target 'setp3'. Did you mean: make step3"),
        ("Step3", "no target 'Step3'. Did you mean: make step3"),
        ("dif-step4", "Did you mean: make diff-step4"),
        ("step10", "no target 'step10': the lessons are step1 .. step9"),
        ("step3_tags_logs", "step3_tags_logs is lesson 3's folder; to run it: make step3"),  # was: up to date, 0
    ],
)
def test_a_typo_names_the_nearest_target_and_make_help(typed, said):
    result = make(typed)
    assert result.returncode != 0
    assert said in result.stderr and "make help lists every target." in result.stderr
    assert "No rule to make target" not in result.stderr and "Nothing to be done" not in result.stdout


def test_make_help_fits_80_columns():
    lines = make("-s", "help").stdout.splitlines()
    assert len(lines) > 10
    assert [line for line in lines if len(line) > 80] == []


def test_the_first_make_with_no_network_says_what_it_needs(tmp_path):
    """pip's retries are bounded, and its failure is followed by what to do: the network, or a wheelhouse."""
    require_own_network()
    result = run_in_own_network(f"make setup VENV={tmp_path / 'venv'} PYTHON=python3 || echo status=$?", ROOT, 300)
    out = result.stdout + result.stderr
    assert "status=" in out, out
    assert "needs" in out and "the network" in out and "make setup WHEELHOUSE=<folder>" in out, out
    assert "--retries 1 --timeout 5" in (ROOT / "Makefile").read_text()


def test_make_setup_ends_with_what_to_run_next():
    assert "Next: make doctor" in make("-n", "setup").stdout
