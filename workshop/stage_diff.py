"""`make diff-stepN`: the unified diff between stage N-1 and stage N, which is that lesson's one idea."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from pathlib import Path

from workshop.stages import Stage, find_stage, previous_stage

IGNORED_PARTS = {"__pycache__", ".pytest_cache"}


def _files(folder: Path) -> set[str]:
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and not IGNORED_PARTS & set(path.parts) and path.suffix != ".pyc"
    }


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True) if path.exists() else []


def stage_diff(old: Stage, new: Stage) -> Iterator[str]:
    """The lines `diff -ru old new` prints, without __pycache__."""
    for name in sorted(_files(old.folder) | _files(new.folder)):
        before, after = old.folder / name, new.folder / name
        yield from difflib.unified_diff(
            _lines(before),
            _lines(after),
            fromfile=f"{old.folder.name}/{name}" if before.exists() else "/dev/null",
            tofile=f"{new.folder.name}/{name}" if after.exists() else "/dev/null",
        )


def changed_files(old: Stage, new: Stage) -> set[str]:
    return {
        name
        for name in _files(old.folder) | _files(new.folder)
        if _lines(old.folder / name) != _lines(new.folder / name)
    }


def print_stage_diff(name: str) -> int:
    new = find_stage(name)
    old = previous_stage(new)
    print(f"# What {new.name} changes: diff -ru {old.folder.name} {new.folder.name}")
    for line in stage_diff(old, new):
        sys.stdout.write(line if line.endswith("\n") else line + "\n")
    return 0
