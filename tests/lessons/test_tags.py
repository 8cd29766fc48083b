"""`make stage-tags`: a branch `stages` with tags step1 .. stepN, idempotent, never touching the work tree."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.stage_loader import ROOT
from workshop.errors import WorkshopError
from workshop.lessons.stages import all_stages
from workshop.lessons.tags import build_stage_tags


def git(repo, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def clone(tmp_path):
    """A clone of this repository with the current stage folders committed (as CI's fresh clone has)."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    for stage in all_stages():
        subprocess.run(["cp", "-R", str(stage.folder), str(repo)], check=True)
    subprocess.run(["rm", "-rf", *[str(p) for p in repo.glob("step*/__pycache__")]], check=True)
    git(repo, "add", "-A")
    env_commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "stages"]
    git(repo, *env_commit)
    return repo


def test_each_tag_holds_its_lesson_at_the_root(clone):
    made = build_stage_tags(clone)
    stages = all_stages(clone)
    assert [tag for tag, _ in made] == [stage.name for stage in stages]
    for stage in stages:
        for path in stage.folder.iterdir():
            if path.is_file():
                assert git(clone, "show", f"{stage.name}:{path.name}") == path.read_text().strip()
        assert git(clone, "show", f"{stage.name}:requirements.txt") == (clone / "requirements.txt").read_text().strip()
    assert git(clone, "rev-parse", "stages") == made[-1][1]
    assert git(clone, "rev-list", "--count", "stages") == str(len(stages))
    diff = git(clone, "diff", "step2", "step3", "--stat")
    assert "app.py" in diff and "tracing.py" in diff


def test_running_twice_gives_the_same_tags_and_touches_nothing_else(clone):
    head, status = git(clone, "rev-parse", "HEAD"), git(clone, "status", "--porcelain")
    first = build_stage_tags(clone)
    second = build_stage_tags(clone)
    assert first == second
    assert git(clone, "rev-parse", "HEAD") == head
    assert git(clone, "status", "--porcelain") == status == ""


def test_refuses_when_the_stages_branch_is_checked_out(clone):
    build_stage_tags(clone)
    git(clone, "checkout", "-q", "stages")
    with pytest.raises(WorkshopError, match="check out main first"):
        build_stage_tags(clone)


def test_the_command_prints_what_it_made(clone):
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "stage-tags"], cwd=clone, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "step1" in result.stdout and "git diff step2 step3" in result.stdout
    assert "stage-tags:" in (ROOT / "Makefile").read_text()


def test_at_a_tag_the_readme_command_runs_the_stage_and_main_keeps_the_venv(clone):
    from tests.support.processes import runner_env

    build_stage_tags(clone)
    requirements = sorted(clone.glob("requirements*.txt"))
    before = {path.name: path.stat().st_mtime_ns for path in requirements}
    branch = git(clone, "rev-parse", "--abbrev-ref", "HEAD")  # main, as a learner has it (a branch, in a work tree)
    git(clone, "checkout", "-q", "step3")
    assert (clone / "STAGE").read_text().strip() == "step3"
    assert "make step3" in (clone / "README.md").read_text()  # the lesson's README, at the root
    dry = subprocess.run(["make", "-n", "step3"], cwd=clone, capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0 and "workshop run step3" in dry.stdout, dry.stderr
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "run", "step3", "--once"],
        cwd=clone,
        env=runner_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 service: contributors" in result.stdout
    git(clone, "checkout", "-q", branch)
    after = {path.name: path.stat().st_mtime_ns for path in requirements}
    assert after == before  # untouched: `make` sees no newer requirements, so no reinstall


def test_at_a_tag_make_diff_shows_the_lesson_between_tags(clone):
    build_stage_tags(clone)
    git(clone, "checkout", "-q", "step3")
    result = subprocess.run(
        [sys.executable, "-m", "workshop", "diff", "step3"], cwd=clone, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "+from opentracing.ext import tags" in result.stdout and "README.md" in result.stdout
    assert result.stdout.index("+from opentracing.ext import tags") < result.stdout.index("README.md")  # code first
    code = subprocess.run(
        [sys.executable, "-m", "workshop", "diff", "step3", "--code"], cwd=clone, capture_output=True, text=True
    )
    assert "+from opentracing.ext import tags" in code.stdout and "README.md" not in code.stdout
    git(clone, "checkout", "-q", "main")
