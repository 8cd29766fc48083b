"""`make diff-stepN`: the unified diff between stage N-1 and stage N, which is that lesson's one idea."""

from __future__ import annotations

import difflib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from workshop.errors import WorkshopError
from workshop.lessons.stages import ROOT, STAGE_MARKER, Stage, find_stage, previous_stage

IGNORED_PARTS = {"__pycache__", ".pytest_cache"}


def _files(folder: Path) -> set[str]:
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and not IGNORED_PARTS & set(path.parts) and path.suffix != ".pyc"
    }


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True) if path.exists() else []


def stage_diff(old: Stage, new: Stage, code_only: bool = False) -> Iterator[str]:
    """The lines `diff -ru old new` prints, without __pycache__: the code first, the READMEs last
    (or left out, with `code_only`), so the lesson's idea comes before its explanation."""
    names = sorted(_files(old.folder) | _files(new.folder), key=lambda name: (name.endswith(".md"), name))
    for name in names:
        if code_only and name.endswith(".md"):
            continue
        before, after = old.folder / name, new.folder / name
        yield from difflib.unified_diff(
            _lines(before),
            _lines(after),
            fromfile=f"{old.folder.name}/{name}" if before.exists() else "/dev/null",
            tofile=f"{new.folder.name}/{name}" if after.exists() else "/dev/null",
        )


COLOURS = (("+++", "1"), ("---", "1"), ("@@", "36"), ("+", "32"), ("-", "31"), ("#", "1"))


def coloured(line: str) -> str:
    """A diff line in git's colours: headers bold, hunks cyan, additions green, removals red."""
    for start, code in COLOURS:
        if line.startswith(start):
            return f"\033[{code}m{line.rstrip(chr(10))}\033[0m\n"
    return line


def changed_files(old: Stage, new: Stage) -> set[str]:
    return {
        name
        for name in _files(old.folder) | _files(new.folder)
        if _lines(old.folder / name) != _lines(new.folder / name)
    }


def print_stage_diff(name: str, code_only: bool = False) -> int:
    if (ROOT / STAGE_MARKER).is_file() and not any(ROOT.glob("step[0-9]*_*")):
        return _diff_tags(name, code_only)
    new = find_stage(name)
    old = previous_stage(new)
    what = "the code" if code_only else "the code, then the README"
    lines = [f"# What {new.name} changes ({what}): diff -ru {old.folder.name} {new.folder.name}\n"]
    lines += [line if line.endswith("\n") else line + "\n" for line in stage_diff(old, new, code_only)]
    if not sys.stdout.isatty():
        sys.stdout.writelines(lines)
        return 0
    _page([coloured(line) for line in lines])
    return 0


def _page(lines: Iterable[str]) -> None:
    """Through a pager, as `git diff` does: $PAGER, else `less -FRX` (quits at once if it all fits)."""
    pager = os.environ.get("PAGER") or ("less -FRX" if shutil.which("less") else "")
    if not pager:
        sys.stdout.writelines(lines)
        return
    process = subprocess.Popen(shlex.split(pager), stdin=subprocess.PIPE, text=True)
    try:
        assert process.stdin is not None
        process.stdin.writelines(lines)
        process.stdin.close()
    except BrokenPipeError:  # the reader quit the pager early
        pass
    process.wait()


def _diff_tags(name: str, code_only: bool) -> int:
    """At a stage tag (`make stage-tags`, then `git checkout step3`) the lessons are tags, not folders:
    `git diff step2 step3` is the lesson's diff, coloured and paged by git itself."""
    number = name.removeprefix("step")
    if not number.isdigit() or int(number) < 2:
        raise WorkshopError(f"no lesson before {name}: diff-step2 is the first")
    paths = ["--", ".", ":(exclude)README.md"] if code_only else []
    return subprocess.call(["git", "diff", f"step{int(number) - 1}", f"step{number}", *paths], cwd=ROOT)
