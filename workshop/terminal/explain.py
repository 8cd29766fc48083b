"""`python -m workshop explain <trace id>`: the trace doctor's findings in the terminal (or as JSON)."""

from __future__ import annotations

from rich.console import Group as Lines
from rich.text import Text

from workshop.terminal.query_client import QueryClient
from workshop.tracestore.diagnosis import Finding, Group, diagnose, diagnose_recent
from workshop.tracestore.model import Json, TraceTree

WINDOW_US = 60_000_000  # the neighbours a trace is compared with: the traces that began this close to it


def neighbours(client: QueryClient, trace: Json) -> list[Json]:
    """The traces that began within a minute of `trace`, of every service (a lost hop is another trace)."""
    tree = TraceTree(trace)
    return client.traces_between(tree.start - WINDOW_US, tree.end + WINDOW_US)


def findings_of(client: QueryClient, trace_id: str) -> tuple[Json, list[Finding]]:
    trace = client.trace(trace_id)
    return trace, diagnose(trace, neighbours(client, trace))


def render_findings(trace: Json, findings: list[Finding]) -> Lines:
    if not findings:
        return Lines(Text(f"trace {trace['traceID']}: nothing wrong found", style="green"))
    lines = [Text(f"trace {trace['traceID']}: {len(findings)} finding{'s' * (len(findings) != 1)}", style="bold")]
    for finding in findings:
        lines.append(Text.assemble(("✗ ", "bold red"), (finding.title, "bold")))
        lines.append(Text("  " + finding.detail))
        lines += [Text(f"  - maybe: {cause}", style="dim") for cause in finding.causes]
        lines += [Text(f"  - check: {what}") for what in finding.check]
        if finding.traces:
            lines.append(Text(f"  the other trace: {', '.join(finding.traces)}", style="yellow"))
        lines.append(Text(f"  the lesson: {finding.lesson_readme}", style="cyan"))
    return Lines(*lines)


def render_groups(groups: list[Group], count: int) -> Lines:
    if not groups:
        return Lines(Text(f"the newest {count} traces: nothing wrong found", style="green"))
    lines = [Text(f"the newest {count} traces:", style="bold")]
    for group in groups:
        many = len(group.traces)
        lines.append(Text.assemble(("✗ ", "bold red"), f"{many} trace{'s' * (many != 1)} {group.title}"))
        lines.append(Text(f"  e.g. {', '.join(group.traces[:3])}; the lesson: {group.lesson}", style="dim"))
    return Lines(*lines)


def recent(client: QueryClient, count: int) -> list[Json]:
    """The newest `count` traces of every service."""
    found: dict[str, Json] = {}
    for service in client.services():
        for trace in client.find_traces(service, count):
            found[trace["traceID"]] = trace
    newest = sorted(found.values(), key=lambda t: TraceTree(t).start, reverse=True)
    return newest[:count]


__all__ = ["diagnose_recent", "findings_of", "recent", "render_findings", "render_groups"]
