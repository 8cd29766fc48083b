"""`python -m workshop explain <trace id>`: the trace doctor's findings in the terminal (or as JSON)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rich.console import Group as Lines
from rich.text import Text

from workshop.terminal.query_client import QueryClient
from workshop.tracestore.diagnosis import LESSONS, NEIGHBOURS_US, Finding, Recent, diagnose, diagnose_recent
from workshop.tracestore.model import Json, TraceTree


def neighbours(client: QueryClient, trace: Json) -> list[Json]:
    """Every trace of every service that began in the trace's own time, give or take NEIGHBOURS_US (a lost hop
    is another trace): however old the trace, however many came since."""
    tree = TraceTree(trace)
    return client.traces_between(tree.start - NEIGHBOURS_US, tree.end + NEIGHBOURS_US)


def findings_of(client: QueryClient, trace_id: str) -> tuple[Json, list[Finding]]:
    trace = client.trace(trace_id)
    return trace, diagnose(trace, neighbours(client, trace))


def render_findings(trace: Json, findings: list[Finding], query_url: str) -> Lines:
    """Each finding with its causes and checks; the other trace of a hop as its page's URL, the lesson as its
    README's path (a terminal opens neither, but a learner can copy both)."""
    if not findings:
        return Lines(Text(f"trace {trace['traceID']}: nothing wrong found", style="green"))
    lines = [Text(f"trace {trace['traceID']}: {len(findings)} finding{'s' * (len(findings) != 1)}", style="bold")]
    for finding in findings:
        lines.append(Text.assemble(("✗ ", "bold red"), (finding.title, "bold")))
        lines.append(Text("  " + finding.detail))
        lines += [Text(f"  - maybe: {cause}", style="dim") for cause in finding.causes]
        lines += [Text(f"  - check: {what}") for what in finding.check]
        for other in finding.traces:
            lines.append(Text("  the other trace:", style="yellow"))
            lines.append(Text(f"    {trace_url(query_url, other)}", style="yellow", no_wrap=True, overflow="ignore"))
        lines.append(Text(f"  the lesson: {finding.lesson_readme}", style="cyan"))
    return Lines(*lines)


def trace_url(query_url: str, trace_id: str) -> str:
    """The trace's page, where the store (or Jaeger UI) serves it."""
    return f"{query_url.rstrip('/')}/trace/{trace_id}"


def render_groups(recent: Recent) -> Lines:
    newest = f"the newest {recent.traces} trace{'s' * (recent.traces != 1)}"
    if not recent.groups:
        return Lines(Text(f"{newest}: nothing wrong found", style="green"))
    lines = [Text(f"{newest}, which began {recent.since()}:", style="bold")]
    for group in recent.groups:
        lines.append(Text.assemble(("✗ ", "bold red"), group.title))
        lines.append(Text(f"  e.g. {', '.join(group.traces[:2])}", style="dim"))
        lines.append(Text(f"  the lesson: {LESSONS.get(group.lesson, 'README.md')}", style="dim"))
    return Lines(*lines)


def recent(client: QueryClient, count: int) -> list[Json]:
    """The newest `count` traces of every service, however old: one search a service (Jaeger's API asks for
    one), all at once, since each answer is mostly the store's time to write it."""
    services = client.services()
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(services)))) as pool:
        answers = list(pool.map(lambda service: client.find_traces(service, count, lookback=None), services))
    found = {trace["traceID"]: trace for answer in answers for trace in answer}
    newest = sorted(found.values(), key=lambda t: min((s["startTime"] for s in t["spans"]), default=0), reverse=True)
    return newest[:count]


__all__ = ["diagnose_recent", "findings_of", "recent", "render_findings", "render_groups", "trace_url"]
