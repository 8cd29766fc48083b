"""Every lesson as an exercise: `make exercise-stepN` makes the learner's workspace, `exercises/stepN_<name>/`
(git-ignored): the lesson's own code with its tasks' work taken out (one small patch a task, `stepN-taskK.patch`
beside this file, applied with `git apply`), the plumbing left in place, and a TASKS.md. `make check-stepN`
runs it and reads its trace (workshop.lessons.checking); `make solution-stepN` shows what it still lacks.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from workshop.errors import WorkshopError
from workshop.lessons.expected import REQUESTS, TASKS, Task
from workshop.lessons.mistakes import apply_patch
from workshop.lessons.stages import ROOT, Stage

PATCHES = Path(__file__).resolve().parent
EXERCISES = ROOT / "exercises"
TASKS_FILE = "TASKS.md"
IGNORED = shutil.ignore_patterns("node_modules", "__pycache__", "README.md")


def tasks_of(stage: Stage) -> tuple[Task, ...]:
    try:
        return TASKS[stage.name]
    except KeyError:
        raise WorkshopError(f"{stage.name} has no exercise: lessons 2 to 9 do") from None


def undo_patch(stage: Stage, task: Task) -> Path:
    return PATCHES / f"{stage.name}-{task.patch}"


def workspace_of(stage: Stage, root: Path = EXERCISES) -> Path:
    return root / stage.folder.name


def fill(stage: Stage, folder: Path, undone: Iterable[Task] | None = None) -> None:
    """`folder` (new): the lesson's code with the work of the `undone` tasks (default: every task) taken out."""
    shutil.copytree(stage.folder, folder, ignore=IGNORED)
    if stage.node_project is not None and (stage.node_project / "node_modules").is_dir():
        (folder / stage.node_project.name / "node_modules").symlink_to(stage.node_project / "node_modules")
    for task in tasks_of(stage) if undone is None else undone:
        if not task.guard:
            apply_patch(undo_patch(stage, task), folder)
    (folder / TASKS_FILE).write_text(tasks_markdown(stage))


def make_exercise(stage: Stage, root: Path = EXERCISES, fresh: bool = False) -> tuple[Path, str]:
    """The learner's workspace, made if it is not there; a learner's work is never overwritten (with `fresh`,
    it is moved aside first). The folder, and what to say."""
    folder = workspace_of(stage, root)
    moved = ""
    if folder.exists() and not fresh:
        return folder, (
            f"{_shown(folder)} is there already, with your work: keep going, then make check-{stage.name}. "
            f"To start again from scratch: make exercise-{stage.name} FRESH=1 (your work is moved aside, not deleted)."
        )
    if folder.exists():
        aside = next(
            folder.with_name(f"{folder.name}.{n}")
            for n in range(1, 1000)
            if not folder.with_name(f"{folder.name}.{n}").exists()
        )
        folder.rename(aside)
        moved = f"Your earlier work is in {_shown(aside)}. "
    folder.parent.mkdir(parents=True, exist_ok=True)
    fill(stage, folder)
    count = sum(not task.guard for task in tasks_of(stage))
    return folder, (
        f"{moved}Your workspace: {_shown(folder)}, lesson {stage.number}'s code without its {count} tasks' work. "
        f"Read {_shown(folder / TASKS_FILE)}, edit the files it names, then: make check-{stage.name}"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def tasks_markdown(stage: Stage) -> str:
    """TASKS.md: the lesson's tasks, numbered as `make check-stepN` numbers them."""
    lines = [
        f"# Lesson {stage.number} as an exercise: {stage.folder.name}",
        "",
        f"The lesson: [{stage.folder.name}/README.md](../../{stage.folder.name}/README.md). This folder is its code "
        "with the work of the tasks below taken out (each place is marked `TASKS.md, task N`); the rest, the "
        "plumbing included, is there already.",
        "",
        f"Run `make check-{stage.name}` after each change: it runs this folder as `make {stage.name}` runs the "
        "lesson, sends its requests, reads the trace back and says, task by task, what the trace still lacks.",
        "",
        "## Tasks",
        "",
    ]
    for task in tasks_of(stage):
        if task.guard:
            continue
        path, _ = REQUESTS[task.request]
        lines.append(f"{task.number}. {task.title[0].upper()}{task.title[1:]}. (Seen in the trace of `GET {path}`.)")
    guards = [task for task in tasks_of(stage) if task.guard]
    if guards:
        lines += ["", "## And keep it so", ""]
        lines += [f"{task.number}. {task.title[0].upper()}{task.title[1:]}." for task in guards]
    lines += [
        "",
        f"Stuck? `make check-{stage.name}` gives a hint for each task not done. `make solution-{stage.name}` shows "
        "what this folder still lacks, as a diff to the lesson's code: try the hints first.",
        "",
    ]
    return "\n".join(lines)


def solution_lines(stage: Stage, folder: Path) -> Iterator[str]:
    """What `folder` lacks of the lesson's code: the diff from it to the lesson's folder (the code only)."""
    from workshop.lessons.diff import stage_diff

    yield from stage_diff(Stage(stage.number, folder), stage, code_only=True)
