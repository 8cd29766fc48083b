"""`make check-stepN`: the learner's workspace run as `make stepN` runs the lesson, the lesson's requests sent,
the traces read back and checked against the lesson's tasks (workshop.lessons.checking): a checklist, with what
the trace lacks and a hint for each task not done, then the trace doctor's findings, then how far along it is.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests
from rich.console import Console

from workshop.lessons.checking import Result, check, requests_of
from workshop.lessons.expected import ANSWERS, REQUESTS, TASKS
from workshop.lessons.stages import ROOT, Stage
from workshop.runner.wrapped import say_wrapped
from workshop.terminal.explain import neighbours
from workshop.terminal.query_client import QueryClient, trace_services
from workshop.tracestore.diagnosis import Finding, diagnose
from workshop.tracestore.model import Json, TraceTree

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
    failed: dict[str, str] = field(default_factory=dict)  # request -> what went wrong with its answer
    said: dict = field(default_factory=dict)
    logs: Mapping[str, Iterable[str]] = field(default_factory=dict)  # each process's last lines (the runner's)

    def _error_in_the_log(self, wait_s: float = 2.0) -> list[str]:
        """where_it_failed(), once the service's log lines have come through the runner (they may follow its
        answer by a moment)."""
        deadline = time.monotonic() + wait_s
        while not (found := self.where_it_failed()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return found

    @staticmethod
    def _trace(client: QueryClient, trace_id: str | None, sent_us: int, services: set[str], timeout: float):
        if trace_id:
            return client.wait_for_trace(trace_id, services, timeout, quiet=QUIET_S)
        return first_trace_since(client, sent_us, services, timeout)  # the one that began when it was sent

    def where_it_failed(self) -> list[str]:
        """Where each process of the workspace last failed, from its log: its file and line, and the error."""
        found = [(name, where_it_failed(lines, self.workspace)) for name, lines in list(self.logs.items())]
        return [f"{name}: {where}" for name, where in found if where]

    def __call__(self, console: Console, entry_url: str, query_url: str, services: set[str]) -> bool:
        client = QueryClient(query_url)
        found, around, findings = {}, {}, {}
        silent: bool | None = None  # no span of the services reached the store (known after the first request)
        for name in requests_of(self.stage.name):
            path, headers = REQUESTS[name]
            sent_us = time.time_ns() // 1000
            try:
                answer = requests.get(entry_url + path, headers=headers, timeout=REQUEST_TIMEOUT)
            except requests.RequestException as error:
                self.failed[name] = f"GET {path} got no answer ({type(error).__name__}): see the log above"
                found[name], around[name], findings[name] = None, [], []
                continue
            if answer.status_code != ANSWERS[name]:
                where = "; ".join(self._error_in_the_log()) or "the log above says why"
                self.failed[name] = (
                    f"GET {path} answered {answer.status_code}{_error_of(answer)}, not {ANSWERS[name]}: {where}"
                )
            trace_id = answer.headers.get("X-Trace-Id")
            trace = None
            if not silent:  # a store that heard from none of the services gets no more later
                trace = self._trace(client, trace_id, sent_us, services, QUIET_S * 2)
                silent = trace is None and not set(client.services()) & services
                if trace is None and not silent:  # on a busy laptop, spans may be slow to come: wait some more
                    trace = self._trace(client, trace_id, sent_us, services, TRACE_TIMEOUT - QUIET_S * 2)
            found[name] = trace
            around[name] = neighbours(client, trace) if trace else []
            findings[name] = diagnose(trace, around[name]) if trace else []
        self.results = check(self.stage.name, found, around, findings)
        self.findings = _unique(finding for name in found for finding in findings[name])
        self.said = self.summary()
        if self.as_json:
            print(json.dumps(self.said), file=sys.__stdout__, flush=True)
        else:
            self.print(console)
        return all(result.done for result in self.results) and not self.failed

    def print(self, console: Console) -> None:
        width = console.width
        say = functools.partial(say_wrapped, console, width)
        console.print()
        say(
            f"make check-{self.stage.name}: {shown(self.workspace)}, against lesson {self.stage.number}'s tasks",
            style="bold",
        )
        for name in requests_of(self.stage.name):
            path, headers = REQUESTS[name]
            sent = ", ".join(f"{key}: {value}" for key, value in headers.items())
            say(f"(it sent GET {path} with {sent}, and read that request's trace)", indent=2, hang=3)
        for failure in self.failed.values():  # first: what follows may be only its consequence
            say(f"✗ {failure}", hang=2, style="red", first=1)
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
            for mistake in result.mistakes:
                say(f"a classic mistake does this: make {self.stage.name} MISTAKE={mistake}", indent=4, hang=6)
        if self.findings:
            say("The trace doctor also says (the same traces, read for what is wrong with them):")
        for finding in self.findings:
            lesson = finding.lesson.removeprefix("step")
            say(f"- {finding.title} (taught in lesson {lesson})", indent=2, hang=4)
        say(f"Your trace, as the lesson shows its own: make {self.stage.name} FOLDER={shown(self.workspace)}")
        say(self.verdict(), style="bold")

    def verdict(self, where: str = " (above)") -> str:
        """How far along: "2 of 3 done: next, task 3", or "all done: next, make exercise-step5"."""
        todo = [result for result in self.results if not result.task.guard]
        failed = next((result for result in self.results if not result.done), None)
        done = sum(result.done for result in todo)
        if self.failed:
            return f"{done} of {len(todo)} done, and a request failed: fix that first{where}"
        if failed is None:
            later = [name for name in TASKS if int(name[4:]) > self.stage.number]
            return f"all done: next, make exercise-{later[0]}" if later else "all done: that was the last lesson"
        return f"{done} of {len(todo)} done: next, task {failed.task.number}{where}"

    def summary(self) -> dict:
        todo = [result for result in self.results if not result.task.guard]
        failed = next((result for result in self.results if not result.done), None)
        return {
            "lesson": self.stage.name,
            "workspace": shown(self.workspace),
            "started": True,
            "ok": failed is None and not self.failed,
            "done": sum(result.done for result in todo),
            "tasks": len(todo),
            "summary": self.verdict(where=""),
            "first_failure": failed.as_json() if failed else None,
            "results": [result.as_json() for result in self.results],
            "findings": [
                {"kind": f.kind, "title": f.title, "lesson": f.lesson, "carrier": f.carrier} for f in self.findings
            ],
            "errors": list(self.failed.values()),
            "checked_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


def first_trace_since(client: QueryClient, since_us: int, services: set[str], timeout: float) -> Json | None:
    """The trace that began first after `since_us` with a span of the lesson's services (the request sent then:
    a check sends one at a time), once it stops growing; None if none comes within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now_us = time.time_ns() // 1000
        began = [
            trace
            for trace in client.traces_between(since_us, now_us)
            if trace_services(trace) & services and TraceTree(trace).start >= since_us
        ]
        if began:
            first = min(began, key=lambda trace: TraceTree(trace).start)
            return client.wait_for_trace(first["traceID"], services, TRACE_TIMEOUT, quiet=QUIET_S)
        time.sleep(0.25)
    return None


PYTHON_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<function>\S+))?')
NODE_FRAME = re.compile(r"\(?(?P<path>/[^():\s]+\.[cm]?js):(?P<line>\d+):\d+\)?$")


def where_it_failed(lines: Iterable[str], folder: Path) -> str | None:
    """The last error in a process's lines (a Python traceback, or Node.js's stack) at a file of `folder`:
    "app.py, line 97, in call_github_proxy: NameError: name 'tag' is not defined"; None if there is none (or
    not all of it yet)."""
    lines = list(lines)
    folder = folder.resolve()
    last = None
    for index, line in enumerate(lines):
        frame = PYTHON_FRAME.search(line) or NODE_FRAME.search(line.strip())
        if frame is None:
            continue
        path = Path(frame["path"])
        if path.is_absolute() and path.resolve().is_relative_to(folder):
            last = (index, frame, path.resolve().relative_to(folder))
    if last is None:
        return None
    index, frame, path = last
    if frame.re is PYTHON_FRAME:  # the error: the first line after the frame that is not indented
        error = next((line.strip() for line in lines[index + 1 :] if line.strip() and not line.startswith(" ")), "")
    else:  # Node.js says the error first, then its stack ("    at ...")
        before = [line.strip() for line in lines[:index] if line.strip() and not line.startswith(" ")]
        error = before[-1] if before else ""
    if not error:  # not all of it yet (a log comes in line by line)
        return None
    function = frame.groupdict().get("function")
    return f"{path}, line {frame['line']}" + (f", in {function}" if function else "") + f": {error}"


def _error_of(answer: requests.Response) -> str:
    """The error the answer gives, in a few words (the lessons answer {"error": ...})."""
    try:
        error = answer.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return f" ({textwrap.shorten(str(error), 80)})" if error else ""


def _unique(findings) -> list[Finding]:
    seen: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        seen.setdefault((finding.kind, finding.title), finding)
    return list(seen.values())


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def syntax_errors(folder: Path) -> list[str]:
    """Each file of the workspace that does not compile (Python's, and Node.js's when `node` is here): its file,
    line and what is wrong."""
    problems = []
    node = shutil.which("node")
    for path in sorted(folder.rglob("*.js")) if node else []:
        if "node_modules" in path.parts:
            continue
        checked = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, timeout=30)
        if checked.returncode != 0:  # node says: "<path>:<line>", the line, a caret, then the error
            said = [line for line in checked.stderr.splitlines() if line.strip()]
            line = said[0].rsplit(":", 1)[-1] if said else "?"
            error = next((text for text in said if re.match(r"^[A-Z][A-Za-z]*Error\b", text)), "")
            problems.append(f"{path.relative_to(folder)}, line {line}: {error}")
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
