"""The demo request `make stepN` sends once a stage is up: print the answer, then its trace."""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import time
from dataclasses import dataclass, field

import requests
from rich.console import Console
from rich.table import Table

from workshop.errors import WorkshopError
from workshop.lessons.mistakes import Mistake
from workshop.runner.wrapped import say_command, say_wrapped
from workshop.terminal.explain import neighbours, trace_url
from workshop.terminal.query_client import QueryClient, trace_services
from workshop.terminal.waterfall import render_trace
from workshop.tracestore.diagnosis import Finding, diagnose

DEMO_TIMEOUT = 30.0  # seconds for the demo request
DEMO_REPO = "pallets/flask"  # the repository it asks about, unless DEMO_REPO names another
KEEP_THIS_TRACE = "jaeger-debug-id"  # jaeger-client keeps (samples) a new trace that arrives with this header


@dataclass
class Demo:
    console: Console
    app_url: str
    repo: str
    query_url: str
    services: set[str]  # the services its trace must have; empty for an untraced stage
    trace_timeout: float
    once: bool = False  # everything stops after the demo (ONCE=1)
    spans_elsewhere: str | None = None  # why the trace cannot arrive in the store (the spans go elsewhere)
    lock: contextlib.AbstractContextManager = field(default_factory=contextlib.nullcontext)  # the output's
    slow: float = 0.0  # how long the last answer took, if over a second
    mistake: Mistake | None = None  # the lesson runs with this mistake in its code (MISTAKE=)
    browser_url: str = ""  # the trace store's pages, as a learner's browser reaches them

    def run(self) -> tuple[bool, str | None]:
        """Send the request, print the answer and its trace: (whether all of it worked, the trace id)."""
        url = f"{self.app_url}/contributors/{self.repo}"
        self.console.print(f"\n[bold]Demo request:[/bold] GET {url}")
        response = self._send(url, {"X-Client": "make demo"})  # lesson 6 reads X-Client
        if response is None:
            return False, None
        trace_id = response.headers.get("X-Trace-Id")
        if self.services and not trace_id:
            # A sampler that keeps a share of the traces (lessons 6 and 8's "try next") did not keep this one.
            if self.slow:
                self.console.print(
                    f"[yellow]That took {self.slow:.1f} s, but the sampler kept no trace of it: the one below is "
                    "of the request asked again, answered fast (GitHub had the stats ready by then).[/]"
                )
            self.console.print(
                "[yellow]The answer names no trace: the sampler did not keep it. Asking again with "
                f"[bold]{KEEP_THIS_TRACE}: make demo[/bold] (jaeger-client keeps such a trace) and a "
                "[bold]traceparent[/bold] whose parent was kept (OpenTelemetry's parent-based sampler follows it):[/]"
            )
            kept_parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
            keep = {KEEP_THIS_TRACE: "make demo", "traceparent": kept_parent}
            response = self._send(url, {"X-Client": "make demo", **keep})
            if response is None:
                return False, None
            trace_id = response.headers.get("X-Trace-Id")
        if self.services and self.spans_elsewhere:
            self.console.print(f"[yellow]{self.spans_elsewhere}[/yellow]")
            if self.once:  # waits for it as ever (the services' "spans dropped" lines come meanwhile), and exits 1
                self._print_trace(trace_id)
                return False, trace_id
            return True, trace_id  # keep running: the services' log shows what happens to their spans
        return (self._print_trace(trace_id) if self.services else True), trace_id

    def _send(self, url: str, headers: dict[str, str]) -> requests.Response | None:
        started = time.monotonic()
        try:
            response = requests.get(url, headers=headers, timeout=DEMO_TIMEOUT)
        except requests.RequestException as error:
            self.console.print(f"[red]the demo request failed: {error}[/red]")
            return None
        with self.lock:  # the answer in one piece: no process's log line inside its table
            self._print_answer(response, time.monotonic() - started)
        return response

    def _print_answer(self, response: requests.Response, elapsed: float) -> None:
        self.slow = elapsed if elapsed > 1 else 0.0
        colour = "green" if response.ok else "yellow"
        self.console.print(
            f"[{colour}]{response.status_code} {response.reason}[/{colour}] in [bold]{elapsed:.2f} s[/bold]"
        )
        try:
            body = response.json()
        except ValueError:
            self.console.print(response.text[:500])
            return
        contributors = body.get("contributors") if isinstance(body, dict) else None
        if contributors is None:
            self.console.print(json.dumps(body, ensure_ascii=False), markup=False)  # as curl shows it
            return
        self.console.print(f"contributors of {body.get('repo')}:")
        table = Table(box=None)
        table.add_column("login")
        table.add_column("commits", justify="right")
        for entry in contributors[:10]:
            table.add_row(str(entry.get("login")), str(entry.get("commits")))
        if len(contributors) > 10:
            table.add_row(f"... {len(contributors) - 10} more", "")
        self.console.print(table)
        if elapsed > 1 and not self.services and self.once:
            self.console.print(f"[yellow]That took {elapsed:.1f} s. Asked again, it is fast. Why was it slow?[/]")
        elif elapsed > 1 and not self.services:
            self.console.print(f"[yellow]That took {elapsed:.1f} s. Ask again: it is fast now. Why was it slow?[/]")
        elif elapsed > 1 and response.headers.get("X-Trace-Id"):  # (no trace of it: run() says so)
            self.console.print(f"[yellow]That took {elapsed:.1f} s: the trace below shows where the time went.[/]")

    def _findings(self, trace: dict) -> list[Finding]:
        """The trace doctor's findings. With a mistake, asked again (the trace and its neighbours fetched anew)
        until the finding the mistake makes is there, within the trace timeout: the other half of a lost hop is
        another trace, which arrives on its own schedule."""
        client = QueryClient(self.query_url)
        deadline = time.monotonic() + (self.trace_timeout if self.mistake else 0)
        while True:
            try:
                findings = diagnose(trace, neighbours(client, trace))
            except WorkshopError:  # the store went away meanwhile: the trace above is what there is
                return []
            if self.mistake is None or self._made_by_mistake(findings) or time.monotonic() >= deadline:
                return findings
            time.sleep(0.5)
            with contextlib.suppress(WorkshopError):
                trace = client.trace(trace["traceID"])

    def _made_by_mistake(self, findings: list[Finding]) -> Finding | None:
        return next((f for f in findings if self.mistake and f.kind == self.mistake.finding), None)

    def _print_findings(self, trace: dict) -> list[Finding]:
        """The trace doctor's word, one line a finding, when the demo's trace has something wrong with it. With
        ONCE=1 the store stops next, so what `explain` would add comes here instead of its command."""
        findings = self._findings(trace)
        say = functools.partial(say_wrapped, self.console, self.console.width)
        for finding in findings:
            lesson = finding.lesson.removeprefix("step")
            title = f"✗ the trace doctor: {finding.title} (taught in lesson {lesson})"
            say(title, hang=2, style="red", first=len("✗ the trace doctor:"))
            if self.once:
                say(finding.detail, indent=2)
                for what in finding.check:
                    say(f"- check: {what}", indent=2, hang=4)
            for other in finding.traces[:1] if not self.once else []:
                self._print_command("the other trace:", trace_url(self.browser_url or self.query_url, other))
            self.console.print(f"  the lesson: {finding.lesson_readme}", markup=False)
        if findings and not self.once:
            self._print_command("why, and what to check:", f".venv/bin/python -m workshop explain {trace['traceID']}")
        return findings

    def _print_command(self, what: str, command: str) -> None:
        """A command or a link on a line of its own, never wrapped: a learner copies it whole."""
        say_command(self.console, what, command, below=True)

    def _print_trace(self, trace_id: str | None) -> bool:
        if not trace_id:
            self.console.print("[red]the answer has no X-Trace-Id header: is the stage traced?[/red]")
            return False
        lacking = self.mistake.lacks if self.mistake else frozenset()
        trace = QueryClient(self.query_url).wait_for_trace(trace_id, self.services - lacking, self.trace_timeout)
        if trace is None:
            self.console.print(
                f"[red]trace {trace_id} did not arrive at {self.query_url} within {self.trace_timeout:g} s[/red]"
            )
            return False
        with self.lock:
            self.console.print()
            self.console.print(render_trace(trace))
        findings = self._print_findings(trace)
        missing = self.services - trace_services(trace)
        if self.mistake is not None:
            return self._judge_mistake(findings, missing)
        if missing:
            self.console.print(f"[red]the trace lacks spans from {', '.join(sorted(missing))}[/red]")
            return False
        return True

    def _judge_mistake(self, findings: list[Finding], missing: set[str]) -> bool:
        """With MISTAKE=: the broken trace is the point. True if the doctor found what the mistake does."""
        mistake = self.mistake
        assert mistake is not None
        if missing:
            lacking = ", ".join(sorted(missing))
            self.console.print(f"[yellow]The spans of {lacking} are missing from this trace: that is the mistake.[/]")
        if self._made_by_mistake(findings):
            said = (
                f"That is the mistake {mistake.name}: {mistake.says}. The lesson as it should be: make {mistake.stage}"
            )
            say_wrapped(
                self.console, self.console.width, said, style="bold", first=len(f"That is the mistake {mistake.name}")
            )
            return True
        self.console.print(
            f"[red]The trace doctor did not find what {mistake.name} does (a {mistake.finding} finding) within "
            f"{self.trace_timeout:g} s: see the services' log above[/red]"
        )
        return False
