"""Every lesson as an exercise: `make exercise-stepN` makes the learner's workspace, `exercises/stepN_<name>/`
(git-ignored): where the lesson starts, the previous lesson's code, with what the lesson adds around its idea
ready-made (STARTS says what), and a TASKS.md. `make check-stepN` runs it and reads its trace
(workshop.lessons.checking); `make solution-stepN` shows what it still lacks.

Each task's work is a patch beside this file, `stepN-taskK.patch`, made on the lesson's code as it is before that
task (the tasks before it done, the ones after not): the workspace is the lesson's code with the patches taken back
out, from the last task to the first (`git apply --reverse`). So a workspace with some tasks done has the first
ones done, as a learner does them.
"""

from __future__ import annotations

import re
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
# What each workspace starts from, besides its tasks: the previous lesson's code, and what is ready-made.
STARTS = {
    "step2": "lesson 1's app, untraced; the tracer's set-up (tracing.py) and flask-opentracing's fixes "
    "(tracing_fixes.py) are ready-made, to use",
    "step3": "lesson 2's code; log correlation (tracing.py's correlate_logs(), and the log format naming each "
    "line's trace and span) is ready-made: watch the log lines",
    "step4": "lesson 3's code, split in two services as the lesson does it (the github-proxy, github_proxy.py, "
    "with the GitHub code and its spans moved there); only the gateway traces yet",
    "step5": "lesson 4's code, with the cleaning moved into a worker that takes jobs from Redis (worker.py), as "
    "the lesson does it, untraced",
    "step6": "lesson 5's code; the baggage helpers with their size limit (tracing.py's set_baggage() and "
    "get_baggage()), the gateway's ?top= check and the worker's top_from_baggage() are ready-made",
    "step7": "lesson 6's services, on OpenTelemetry's SDK through the OpenTracing shim (tracing.py), the "
    "headers written by OpenTelemetry's propagate.inject(): sending the spans, and the baggage, are the "
    "lesson's work",
    "step8": "lesson 7's services on OpenTelemetry's own API, its tracer and log correlation set up (tracing.py), "
    "the lesson's spans started with start_as_current_span(): the instrumentations, events and "
    "conventions are the lesson's work",
    "step9": "lesson 8's Python services; Traefik in front (traefik.sh, routes.yml) and the github-proxy "
    "rewritten in Node.js (github-proxy/), untraced",
}


def tasks_of(stage: Stage) -> tuple[Task, ...]:
    try:
        return TASKS[stage.name]
    except KeyError:
        raise WorkshopError(f"{stage.name} has no exercise: lessons 2 to 9 do") from None


def to_do(stage: Stage) -> list[Task]:
    """The tasks with work to do, in order (the guards hold from the start)."""
    return [task for task in tasks_of(stage) if not task.guard]


def work_patch(stage: Stage, task: Task) -> Path:
    """The task's work, made on the lesson's code as it is before the task."""
    return PATCHES / f"{stage.name}-task{task.number}.patch"


def files_of(stage: Stage, task: Task) -> list[str]:
    """The files a task's work is in."""
    return re.findall(r"^diff --git a/(\S+) ", work_patch(stage, task).read_text(), re.M)


def workspace_of(stage: Stage, root: Path = EXERCISES) -> Path:
    return root / stage.folder.name


def fill(stage: Stage, folder: Path, undone: Iterable[Task] | None = None) -> None:
    """`folder` (new): the lesson's code with the work of the `undone` tasks (default: every task) taken out.
    The undone ones are the last tasks: a task's work is made on the ones before it done."""
    todo = to_do(stage)
    undone = todo if undone is None else list(undone)
    if undone != todo[len(todo) - len(undone) :]:
        numbers = ", ".join(str(task.number) for task in undone)
        raise ValueError(f"{stage.name}: tasks {numbers} are not the last ones; only the last can be left undone")
    shutil.copytree(stage.folder, folder, ignore=IGNORED)
    if stage.node_project is not None and (stage.node_project / "node_modules").is_dir():
        (folder / stage.node_project.name / "node_modules").symlink_to(stage.node_project / "node_modules")
    for task in reversed(undone):
        apply_patch(work_patch(stage, task), folder, reverse=True)
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
    return folder, (
        f"{moved}Your workspace: {_shown(folder)}, where lesson {stage.number} starts (lesson {stage.number - 1}'s "
        f"code, and what is ready-made). Its {len(to_do(stage))} tasks are in {_shown(folder / TASKS_FILE)}; "
        f"after each, run: make check-{stage.name}"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def tasks_markdown(stage: Stage) -> str:
    """TASKS.md: the lesson's tasks, numbered as `make check-stepN` numbers them, each with its files."""
    previous = stage.number - 1
    lines = [
        f"# Lesson {stage.number} as an exercise: {stage.folder.name}",
        "",
        f"The lesson: [{stage.folder.name}/README.md](../../{stage.folder.name}/README.md). Read its first part, "
        "then do it here.",
        "",
        f"This folder is where lesson {stage.number} starts: {STARTS[stage.name]}. The tasks below are the "
        f"lesson's idea; each place to work is marked `TASKS.md, task N`.",
        "",
        f"Run `make check-{stage.name}` after each change: it runs this folder as `make {stage.name}` runs the "
        "lesson, sends its requests, reads the trace back and says, task by task, what the trace still lacks. "
        f"To see your trace as the lesson shows its own: `make {stage.name} FOLDER={_shown(workspace_of(stage))}`.",
        "",
        "## Tasks",
        "",
    ]
    for task in to_do(stage):
        path, _ = REQUESTS[task.request]
        files = ", ".join(files_of(stage, task))
        lines.append(f"{task.number}. {_sentence(task.title)} In: {files}. (Seen in the trace of `GET {path}`.)")
    guards = [task for task in tasks_of(stage) if task.guard]
    if guards:
        lines += ["", "## And keep it so", ""]
        lines += [f"{task.number}. {_sentence(task.title)}" for task in guards]
    lines += [
        "",
        f"Stuck? `make check-{stage.name}` gives a hint for each task not done. `make solution-{stage.name}` shows "
        f"what this folder still lacks, as a diff to the lesson's code: try the hints first. (`diff -ru` with "
        f"lesson {previous}'s folder shows what is ready-made.)",
        "",
    ]
    return "\n".join(lines)


def _sentence(text: str) -> str:
    return f"{text[0].upper()}{text[1:]}."


def solution_lines(stage: Stage, folder: Path) -> Iterator[str]:
    """What `folder` lacks of the lesson's code: the diff from it to the lesson's folder (the code only)."""
    from workshop.lessons.diff import stage_diff

    yield from stage_diff(Stage(stage.number, folder), stage, code_only=True)
