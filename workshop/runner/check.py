"""`make check-stepN`: the learner's workspace run as `make stepN` runs the lesson, the lesson's requests sent,
the traces read back and checked against the lesson's tasks (workshop.lessons.checking): a checklist, with what
the trace lacks and a hint for each task not done, then the trace doctor's findings, then how far along it is.
"""

from __future__ import annotations

import functools
import json
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import requests
from rich.console import Console
from rich.markup import escape

from workshop.errors import WorkshopError
from workshop.lessons.checking import Result, check, requests_of
from workshop.lessons.expected import REQUESTS, TASKS
from workshop.lessons.stages import ROOT, Stage
from workshop.terminal.explain import neighbours
from workshop.terminal.query_client import QueryClient
from workshop.tracestore.diagnosis import Finding, diagnose

REQUEST_TIMEOUT = 30.0
TRACE_TIMEOUT = 6.0  # at most, for a trace to have a span of every service
QUIET_S = 1.5  # a trace that got no new span for this long has all it will get (a broken one lacks some services)


@dataclass
class Checker:
    """What the runner does in place of its demo, for `make check-stepN`."""

    stage: Stage  # the lesson (its name and number); the workspace is what runs
    workspace: Path
    as_json: bool = False
    results: list[Result] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    said: dict = field(default_factory=dict)

    def __call__(self, console: Console, entry_url: str, query_url: str, services: set[str]) -> bool:
        client = QueryClient(query_url)
        found, around, findings = {}, {}, {}
        for name in requests_of(self.stage.name):
            path, headers = REQUESTS[name]
            try:
                answer = requests.get(entry_url + path, headers=headers, timeout=REQUEST_TIMEOUT)
            except requests.RequestException as error:
                raise WorkshopError(f"the workspace did not answer GET {path}: {error}") from None
            trace_id = answer.headers.get("X-Trace-Id")
            trace = client.wait_for_trace(trace_id, services, TRACE_TIMEOUT, quiet=QUIET_S) if trace_id else None
            found[name] = trace
            around[name] = neighbours(client, trace) if trace else []
            findings[name] = diagnose(trace, around[name]) if trace else []
        self.results = check(self.stage.name, found, around, findings)
        self.findings = findings.get("demo", [])
        self.said = self.summary()
        if self.as_json:
            print(json.dumps(self.said), file=sys.__stdout__, flush=True)
        else:
            self.print(console)
        return all(result.done for result in self.results)

    def print(self, console: Console) -> None:
        width = console.width
        say = functools.partial(_say, console, width)
        console.print()
        say(
            f"make check-{self.stage.name}: {shown(self.workspace)}, against lesson {self.stage.number}'s tasks",
            style="bold",
        )
        for name in requests_of(self.stage.name):
            path, headers = REQUESTS[name]
            sent = ", ".join(f"{key}: {value}" for key, value in headers.items())
            say(f"(it sent GET {path} with {sent}, and read that request's trace)", indent=2, hang=3)
        for result in self.results:
            task = result.task
            keep = " (keep it so)" if task.guard else ""
            say(
                f"{'✓' if result.done else '✗'} {task.number} {task.title}{keep}",
                hang=4,
                style="green" if result.done else "red",
                first=1,
            )
            if result.done:
                continue
            for problem in result.problems:
                say(f"the trace: {problem}", indent=4, hang=6)
            say(f"hint: {task.hint}", indent=4, hang=6, style="cyan", first=5)
            for mistake in task.mistakes:
                say(f"a classic mistake does this: make {self.stage.name} MISTAKE={mistake}", indent=4, hang=6)
        if self.findings:
            say("The trace doctor also says (the same trace, read for what is wrong with it):")
        for finding in self.findings:
            lesson = finding.lesson.removeprefix("step")
            say(f"- {finding.title} (taught in lesson {lesson})", indent=2, hang=4)
        say(self.said["summary"], style="bold")

    def summary(self) -> dict:
        todo = [result for result in self.results if not result.task.guard]
        done = sum(result.done for result in todo)
        failed = next((result for result in self.results if not result.done), None)
        every = failed is None
        number = self.stage.number
        later = [n for n in TASKS if int(n[4:]) > number]
        if every:
            text = f"all done: next, make exercise-{later[0]}" if later else "all done: that was the last lesson"
        else:
            text = f"{done} of {len(todo)} done: next, task {failed.task.number} (above)"
        return {
            "lesson": self.stage.name,
            "workspace": shown(self.workspace),
            "ok": every,
            "done": done,
            "tasks": len(todo),
            "summary": text,
            "first_failure": failed.as_json() if failed else None,
            "results": [result.as_json() for result in self.results],
            "findings": [
                {"kind": f.kind, "title": f.title, "lesson": f.lesson, "carrier": f.carrier} for f in self.findings
            ],
        }


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def syntax_errors(folder: Path) -> list[str]:
    """Each Python file of the workspace that does not compile: its file, line and what is wrong."""
    problems = []
    for path in sorted(folder.glob("*.py")):
        try:
            compile(path.read_text(), str(path), "exec")
        except SyntaxError as error:
            line = (error.text or "").rstrip()
            problems.append(
                f"{path.name}, line {error.lineno}: {error.msg}" + (f"\n    {line.strip()}" if line else "")
            )
        except (UnicodeDecodeError, ValueError) as error:
            problems.append(f"{path.name}: {error}")
    return problems


def _say(console: Console, width: int, text: str, indent: int = 0, hang: int = 0, style: str = "", first: int = 0):
    """`text` wrapped to the terminal's width, its later lines indented by `hang`; the first `first` characters
    (all, if 0) in `style`. Wrapped here, not by rich, so that no line ends in padding."""
    lines = textwrap.wrap(
        text,
        width,
        initial_indent=" " * indent,
        subsequent_indent=" " * max(hang, indent),
        break_on_hyphens=False,
        break_long_words=False,
    ) or [""]
    head = lines[0]
    cut = indent + (first or len(head))
    styled = f"[{style}]{escape(head[:cut])}[/{style}]{escape(head[cut:])}" if style else escape(head)
    console.print(styled, soft_wrap=True, highlight=False)
    for line in lines[1:]:
        console.print(escape(line), soft_wrap=True, highlight=False)
