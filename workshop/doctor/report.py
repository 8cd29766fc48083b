"""What the doctor prints: a line per check, and a last line saying which lessons can run; or JSON."""

from __future__ import annotations

import json
import platform
import sys
import textwrap

from workshop.doctor.checks import Check

MARKS = {True: "✓", False: "✗"}


def blocked_lessons(checks: list[Check], lessons: list[int]) -> dict[int, list[str]]:
    """lesson -> the items that stop it (only lessons that cannot run)."""
    blocked: dict[int, list[str]] = {}
    for check in checks:
        if check.ok or check.optional:
            continue
        for lesson in check.blocks:
            if lesson in lessons and check.item not in blocked.setdefault(lesson, []):
                blocked[lesson].append(check.item)
    return blocked


def _span(numbers: list[int]) -> str:
    """[1, 2, 3, 5] -> '1–3, 5'."""
    parts, start = [], None
    for index, number in enumerate(numbers):
        if start is None:
            start = number
        if index + 1 == len(numbers) or numbers[index + 1] != number + 1:
            parts.append(str(start) if start == number else f"{start}–{number}")
            start = None
    return ", ".join(parts)


def summary(checks: list[Check], lessons: list[int]) -> str:
    blocked = blocked_lessons(checks, lessons)
    if not blocked:
        return f"✓ every lesson ({_span(lessons)}) can run here"
    runnable = [lesson for lesson in lessons if lesson not in blocked]
    groups: dict[str, list[int]] = {}
    for lesson in sorted(blocked):
        groups.setdefault(", ".join(blocked[lesson]), []).append(lesson)
    cannot = "; ".join(f"{_span(numbers)} can't ({why})" for why, numbers in groups.items())
    can = f"lessons {_span(runnable)} can run; " if runnable else "no lesson can run: "
    return f"✗ {can}{cannot}"


def line(check: Check) -> str:
    text = f"{MARKS[check.ok]} {check.item}: {check.detail}"
    return text + (f". Fix: {check.fix}" if not check.ok and check.fix else "")


def text_report(checks: list[Check], lessons: list[int]) -> str:
    return "\n".join([*(line(check) for check in checks), summary(checks, lessons)])


def json_report(checks: list[Check], lessons: list[int], commit: str | None = None) -> str:
    blocked = blocked_lessons(checks, lessons)
    document = {
        "ok": not blocked,
        "workshop": {"commit": commit},  # which clone: an old one is spotted in the room's results
        "machine": {"system": sys.platform, "machine": platform.machine(), "node": platform.node()},
        "lessons": {
            str(lesson): {"can_run": lesson not in blocked, "blocked_by": blocked.get(lesson, [])} for lesson in lessons
        },
        "checks": [check.as_dict() for check in checks],
        "summary": summary(checks, lessons),
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def wrapped(text: str, width: int) -> str:
    """Each line wrapped at `width` with its continuation indented, so that a ✓ or ✗ starts every item."""
    return "\n".join(
        textwrap.fill(line, width, subsequent_indent="    ", break_on_hyphens=False) for line in text.splitlines()
    )


def room_report(documents: dict[str, dict]) -> str:
    """One line per laptop of a room, from the files `make doctor JSON=1` wrote: the ones to visit first. Files
    that `make check-stepN JSON=1` wrote (they name a lesson) give the room's exercise, in a part of its own;
    a file that is neither (unreadable, or something else) is named as such, last."""
    checks = {name: document for name, document in documents.items() if "lesson" in document}
    doctors = {name: document for name, document in documents.items() if "workshop" in document}
    others = {name: document for name, document in documents.items() if name not in checks and name not in doctors}
    parts = []
    if checks:
        parts.append(room_exercise_report(checks))
    if doctors:
        parts.append(room_laptops_report(doctors))
    if others:
        parts.append(
            "\n".join(
                f"{name}: {document.get('summary') or '✗ neither make doctor JSON=1 nor make check-stepN JSON=1'}"
                for name, document in sorted(others.items())
            )
        )
    return "\n\n".join(parts)


def room_laptops_report(documents: dict[str, dict]) -> str:
    lines = []
    for name, document in sorted(documents.items(), key=lambda item: (item[1].get("ok", False), item[0])):
        commit = (document.get("workshop") or {}).get("commit") or "?"
        lines.append(f"{name} ({commit}): {document.get('summary', '✗ not a doctor report')}")
    ready = sum(1 for document in documents.values() if document.get("ok"))
    lines.append(f"{ready} of {len(documents)} laptops can run every lesson")
    commits = {(document.get("workshop") or {}).get("commit") for document in documents.values()}
    if len(commits) > 1:
        lines.append(f"clones at {len(commits)} different commits: `git pull` on the older ones")
    return "\n".join(lines)


def room_exercise_report(documents: dict[str, dict]) -> str:
    """One line per learner, from `make check-stepN JSON=1`: those with the fewest tasks done first (a workspace
    that did not start counts none), each with the task they are at, then how many of each lesson are done."""

    def progress(item: tuple[str, dict]) -> tuple:
        name, document = item
        return (bool(document.get("ok")), document.get("done") or 0, name)

    lines = []
    for name, document in sorted(documents.items(), key=progress):
        failure = document.get("first_failure") or {}
        stuck = f" (at task {failure.get('task')}: {failure.get('title')})" if failure else ""
        errors = document.get("errors") or []
        error = f" [{errors[0]}]" if errors and not document.get("started", True) else ""
        lines.append(f"{name} ({document.get('lesson')}): {document.get('summary', '?')}{stuck}{error}")
    for lesson in sorted({str(document.get("lesson")) for document in documents.values()}):
        of = [document for document in documents.values() if document.get("lesson") == lesson]
        lines.append(f"{sum(bool(d.get('ok')) for d in of)} of {len(of)} learners have done every task of {lesson}")
    return "\n".join(lines)


def printable(text: str) -> str:
    """The report in what this terminal can show (✓ and ✗ become OK and X where it cannot)."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        return text.replace("✓", "OK").replace("✗", "X").replace("–", "-")
