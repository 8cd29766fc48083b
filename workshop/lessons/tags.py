"""`make stage-tags`: the original workshop's one-branch-per-step layout, built from this repository.

A local branch `stages` gets one commit per lesson, holding that lesson's folder (as committed on HEAD)
at the root, with the toolkit that runs it (the Makefile, `workshop/`, the requirements) and a `STAGE` file
naming it, and tags `step1` … `stepN` point at them: `git diff step2 step3` shows the lesson's change, and
after `git checkout step3` the command its README shows, `make step3`, runs it. The toolkit files are
HEAD's own, unchanged, so checking out `main` again leaves `.venv` as it is. Only git's object store and
refs are written: never the working tree, the index or `main`. Fixed author, committer and dates make it
idempotent: the same HEAD gives the same commits, and running it again changes nothing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from workshop.errors import WorkshopError
from workshop.lessons.stages import ROOT, STAGE_MARKER, all_stages

BRANCH = "refs/heads/stages"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Tracing Workshop",
    "GIT_AUTHOR_EMAIL": "workshop@localhost",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0000",
    "GIT_COMMITTER_NAME": "Tracing Workshop",
    "GIT_COMMITTER_EMAIL": "workshop@localhost",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+0000",
}
# HEAD's files every stage commit carries unchanged (the lesson's own README takes the root README's place)
SHARED_FILES = (
    "Makefile",
    "pyproject.toml",
    ".gitignore",
    "workshop",
    "requirements.in",
    "requirements.txt",
    "requirements-dev.in",
    "requirements-dev.txt",
    "requirements-redis.in",
    "requirements-redis.txt",
    "requirements-traefik.in",
    "requirements-traefik.txt",
)


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["git", *args], cwd=repo, input=stdin, capture_output=True, text=True, env={**os.environ, **IDENTITY}
    )
    if result.returncode != 0:
        raise WorkshopError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _entries(repo: Path, path: str) -> list[str]:
    """`git mktree` lines for what HEAD holds under `path`, with the folder prefix removed."""
    lines = []
    for line in _git(repo, "ls-tree", "HEAD", path).splitlines():
        meta, name = line.split("\t", 1)
        lines.append(f"{meta}\t{Path(name).name}")
    return lines


def build_stage_tags(repo: Path = ROOT) -> list[tuple[str, str]]:
    """(tag, commit) for every lesson, after writing them; the same HEAD always gives the same commits."""
    if _git(repo, "rev-parse", "--is-inside-work-tree") != "true":
        raise WorkshopError(f"{repo} is not a git working tree")
    if subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo, capture_output=True).returncode:
        raise WorkshopError("this repository has no commit yet: commit first, then make stage-tags")
    if _git(repo, "symbolic-ref", "-q", "HEAD") == BRANCH:
        raise WorkshopError("the `stages` branch is checked out: check out main first (git checkout main)")
    stages = all_stages(repo)
    if not stages:
        raise WorkshopError(f"no stage folders (step1_*, step2_*, ...) in {repo}")
    shared = [line for name in SHARED_FILES for line in _entries(repo, name)]
    parent: str | None = None
    made = []
    for stage in stages:
        folder = _entries(repo, f"{stage.folder.name}/")
        if not folder:
            raise WorkshopError(f"{stage.folder.name} is not committed: commit it, then make stage-tags")
        marker = _git(repo, "hash-object", "-w", "--stdin", stdin=f"{stage.name}\n")
        own = {entry.split("\t")[1] for entry in folder}
        listing = folder + [entry for entry in shared if entry.split("\t")[1] not in own]
        listing.append(f"100644 blob {marker}\t{STAGE_MARKER}")
        tree = _git(repo, "mktree", stdin="\n".join(sorted(listing, key=lambda e: e.split("\t")[1])) + "\n")
        message = f"{stage.name}: {stage.folder.name}\n\nLesson {stage.number} of the tracing workshop, at the root."
        commit = _git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
        made.append((stage.name, commit))
        parent = commit
    for tag, commit in made:
        _git(repo, "update-ref", f"refs/tags/{tag}", commit)
    _git(repo, "update-ref", BRANCH, made[-1][1])
    return made


def main(repo: Path = ROOT) -> int:
    made = build_stage_tags(repo)
    for tag, commit in made:
        print(f"{tag}  {commit[:12]}")
    first, last = made[0][0], made[-1][0]
    print(
        f"branch `stages` and tags {first} … {last} are ready: try `git diff step2 step3`, or `git checkout step3` "
        "and then `make step3`; `git checkout main` comes back"
    )
    return 0
