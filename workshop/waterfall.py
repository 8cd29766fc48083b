"""A trace in the terminal, the way Jaeger's UI draws it: an indented span tree with a timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from workshop.durations import format_duration_us
from workshop.jaeger_model import Json
from workshop.query_client import trace_services

BAR_WIDTH = 30
SERVICE_STYLES = ["cyan", "magenta", "green", "yellow", "blue", "bright_red"]


@dataclass
class Node:
    span: Json
    service: str
    children: list[Node] = field(default_factory=list)

    @property
    def error(self) -> bool:
        return any(t["key"] == "error" and t["value"] in (True, "true") for t in self.span["tags"])


def span_tree(trace: Json) -> list[Node]:
    """Roots of the trace (usually one), each with its children in start order."""
    processes = trace.get("processes") or {}
    nodes = {
        span["spanID"]: Node(span, processes.get(span["processID"], {}).get("serviceName", "?"))
        for span in trace["spans"]
    }
    roots = []
    for node in sorted(nodes.values(), key=lambda n: n.span["startTime"]):
        parent = next((nodes[r["spanID"]] for r in node.span["references"] if r["spanID"] in nodes), None)
        (parent.children if parent is not None else roots).append(node)
    return roots


def _walk(nodes: list[Node], depth: int = 0, parent: Node | None = None):
    """(depth, node, parent) in display order."""
    for node in nodes:
        yield depth, node, parent
        yield from _walk(node.children, depth + 1, node)


def _value(tag: Json) -> str:
    value = tag["value"]
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def render_trace(trace: Json, tags: bool = False, logs: bool = False, baggage: bool = False) -> Group:
    spans = trace["spans"]
    start = min(s["startTime"] for s in spans)
    end = max(s["startTime"] + s["duration"] for s in spans)
    total = max(end - start, 1)
    services = sorted(trace_services(trace))
    styles = {name: SERVICE_STYLES[i % len(SERVICE_STYLES)] for i, name in enumerate(services)}
    roots = span_tree(trace)
    errors = sum(1 for _, node, _ in _walk(roots) if node.error)

    title = Text.assemble(
        ("trace ", "bold"), (trace["traceID"], "bold"),
        f"  {len(spans)} spans, {len(services)} service{'s' * (len(services) != 1)} ({', '.join(services)}), ",
        (format_duration_us(total), "bold"),
        (f", {errors} error{'s' * (errors != 1)}" if errors else "", "bold red"),
    )  # fmt: skip
    table = Table(box=None, show_header=True, header_style="dim", pad_edge=False, expand=False)
    table.add_column("span", no_wrap=True)
    table.add_column("start", justify="right", style="dim")
    table.add_column("duration", justify="right")
    table.add_column(f"0 ─ {format_duration_us(total)}", no_wrap=True)
    for depth, node, parent in _walk(roots):
        span = node.span
        style = styles.get(node.service, "white")
        label = Text("  " * depth)
        if parent is None or parent.service != node.service:  # name the service where it changes
            label.append(f"{node.service} ", style=f"bold {style}")
        label.append(span["operationName"], style=style)
        if node.error:
            label.append(" ✗ error", style="bold red")
        offset = int((span["startTime"] - start) / total * BAR_WIDTH)
        length = max(1, round(span["duration"] / total * BAR_WIDTH))
        bar = Text(" " * offset)
        bar.append("█" * min(length, BAR_WIDTH - offset) or "▏", style="red" if node.error else style)
        table.add_row(label, format_duration_us(span["startTime"] - start), format_duration_us(span["duration"]), bar)
        indent = "  " * (depth + 1)
        if tags:
            for tag in span["tags"]:
                table.add_row(Text(f"{indent}{tag['key']}={_value(tag)}", style="dim"), "", "", "")
        for entry in span["logs"]:
            fields = {f["key"]: _value(f) for f in entry["fields"]}
            is_baggage = fields.get("event") == "baggage"
            if (logs and not is_baggage) or (baggage and is_baggage):
                at = format_duration_us(entry["timestamp"] - start)
                text = " ".join(f"{k}={v}" for k, v in fields.items())
                table.add_row(Text(f"{indent}log {text}", style="yellow" if is_baggage else "dim"), at, "", "")
        if baggage:
            for tag in span["tags"]:
                if tag["key"].startswith("baggage."):
                    table.add_row(Text(f"{indent}{tag['key']}={_value(tag)}", style="yellow"), "", "", "")
    return Group(title, table)


def render_trace_list(traces: list[Json]) -> Table:
    """Recent traces, slowest first."""
    table = Table(title="traces, slowest first", title_justify="left", box=None, header_style="dim")
    for column, justify in [("trace id", "left"), ("root", "left"), ("services", "left"), ("spans", "right"),
                            ("errors", "right"), ("duration", "right"), ("started", "left")]:  # fmt: skip
        table.add_column(column, justify=justify)

    def duration(trace: Json) -> int:
        spans = trace["spans"]
        return max(s["startTime"] + s["duration"] for s in spans) - min(s["startTime"] for s in spans)

    for trace in sorted(traces, key=duration, reverse=True):
        roots = span_tree(trace)
        root = roots[0] if roots else None
        errors = sum(1 for _, node, _ in _walk(roots) if node.error)
        started = datetime.fromtimestamp(min(s["startTime"] for s in trace["spans"]) / 1e6)
        table.add_row(
            trace["traceID"],
            f"{root.service} {root.span['operationName']}" if root else "?",
            ", ".join(sorted(trace_services(trace))),
            str(len(trace["spans"])),
            Text(str(errors), style="bold red") if errors else "0",
            format_duration_us(duration(trace)),
            started.strftime("%H:%M:%S"),
        )
    return table


def print_trace(trace: Json, console: Console | None = None, **details: bool) -> None:
    (console or Console()).print(render_trace(trace, **details))
