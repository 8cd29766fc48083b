"""A trace in the terminal, the way Jaeger's UI draws it: an indented span tree with a timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from workshop.terminal.query_client import trace_services
from workshop.tracestore.durations import format_duration_us
from workshop.tracestore.jaeger_model import Json

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


MAX_VALUE_CHARS = 500  # a longer tag or log value is cut, with a note (`trace <id> --json` has all of it)
MIN_BAR_WIDTH = 12
WIDE = 100  # from this many columns on, the waterfall also shows when each span started


@dataclass
class Layout:
    """Column widths for one terminal width: the bars keep at least MIN_BAR_WIDTH columns."""

    label: int
    start: int
    duration: int
    bar: int

    @classmethod
    def fit(cls, width: int, longest_label: int) -> Layout:
        start = 8 if width >= WIDE else 0
        room = width - start - 8 - 3  # 8 for the duration, a space between columns
        label = max(12, min(longest_label, room - MIN_BAR_WIDTH, room * 3 // 5))
        return cls(label, start, 8, max(MIN_BAR_WIDTH, min(40, room - label)))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _detail(indent: str, text: str) -> str:
    """A tag or log line: long values cut with a note, a multi-line value (a stack trace) kept indented."""
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"… ({len(text)} characters in all; --json shows them)"
    return indent + text.replace("\n", "\n" + indent + "  ")


def _follows_from(span: Json) -> bool:
    return bool(span["references"]) and span["references"][0]["refType"] == "FOLLOWS_FROM"


def render_trace(
    trace: Json,
    tags: bool = False,
    logs: bool = False,
    baggage: bool = False,
    width: int | None = None,
    scale_us: int | None = None,
) -> Group:
    """The trace as an indented tree with a timeline. `width`: the terminal's columns (default: this one's);
    `scale_us`: the timeline's length, fixed (to compare traces), else the trace's own duration."""
    spans = trace["spans"]
    start = min(s["startTime"] for s in spans)
    end = max(s["startTime"] + s["duration"] for s in spans)
    total = max(end - start, 1)
    scale = max(scale_us or total, 1)
    services = sorted(trace_services(trace))
    styles = {name: SERVICE_STYLES[i % len(SERVICE_STYLES)] for i, name in enumerate(services)}
    roots = span_tree(trace)
    rows = list(_walk(roots))
    errors = sum(1 for _, node, _ in rows if node.error)
    width = width or Console().width

    title = Text.assemble(
        ("trace ", "bold"), (trace["traceID"], "bold"), "  ", (format_duration_us(total), "bold"),
        f", {len(spans)} spans", (f", {errors} error{'s' * (errors != 1)}" if errors else "", "bold red"),
        f"\n{len(services)} service{'s' * (len(services) != 1)}: {', '.join(services)}",
    )  # fmt: skip
    labels = [_label(depth, node, parent, styles) for depth, node, parent in rows]
    layout = Layout.fit(width, max(len(label.plain) for label in labels))
    axis = f"0 ─ {format_duration_us(scale)}" + (" (fixed scale)" if scale_us else "")
    start_column = f"{'start':>{layout.start}} " if layout.start else ""
    header = Text(f"{'span':<{layout.label}} {start_column}{'duration':>{layout.duration}} {axis}", style="dim")
    lines: list[Text] = [title, header]
    for label, (depth, node, _) in zip(labels, rows, strict=True):
        span = node.span
        style = styles.get(node.service, "white")
        line = label if len(label.plain) <= layout.label else label[: layout.label - 1] + Text("…")
        line.pad_right(layout.label - len(line.plain))
        line.append(" ")
        if layout.start:
            line.append(f"{format_duration_us(span['startTime'] - start):>{layout.start}} ", style="dim")
        line.append(f"{format_duration_us(span['duration']):>{layout.duration}} ")
        offset = min(int((span["startTime"] - start) / scale * layout.bar), layout.bar - 1)
        length = max(1, round(span["duration"] / scale * layout.bar))
        block = "░" if _follows_from(span) else "█"  # a span that follows from its parent: not waited for
        line.append(" " * offset)
        line.append(block * min(length, layout.bar - offset) or "▏", style="red" if node.error else style)
        lines.append(line)
        indent = "  " * (depth + 1)
        if tags:
            lines += [Text(_detail(indent, f"{t['key']}={_value(t)}"), style="dim") for t in span["tags"]]
        for entry in span["logs"]:
            fields = {f["key"]: _value(f) for f in entry["fields"]}
            is_baggage = fields.get("event", "").startswith("baggage")  # baggage, baggage.dropped, ...
            if (logs and not is_baggage) or (baggage and is_baggage):
                at = format_duration_us(entry["timestamp"] - start)
                text = " ".join(f"{k}={v}" for k, v in fields.items())
                lines.append(Text(_detail(indent, f"log +{at} {text}"), style="yellow" if is_baggage else "dim"))
        if baggage:
            lines += [
                Text(_detail(indent, f"{t['key']}={_value(t)}"), style="yellow")
                for t in span["tags"]
                if t["key"].startswith("baggage.")
            ]
    if any(_follows_from(node.span) for _, node, _ in rows):
        lines.append(Text("░ follows from its parent: the parent did not wait for it", style="dim"))
    return Group(*lines)


def _label(depth: int, node: Node, parent: Node | None, styles: dict[str, str]) -> Text:
    style = styles.get(node.service, "white")
    label = Text("  " * depth)
    if parent is None or parent.service != node.service:  # name the service where it changes
        label.append(f"{node.service} ", style=f"bold {style}")
    label.append(node.span["operationName"], style=style)
    if _follows_from(node.span):
        label.append(" ⇢", style=style)
    if node.error:
        label.append(" ✗ error", style="bold red")
    return label


def trace_duration(trace: Json) -> int:
    spans = trace["spans"]
    return max(s["startTime"] + s["duration"] for s in spans) - min(s["startTime"] for s in spans)


def render_trace_list(traces: list[Json], limit: int | None = None, width: int | None = None) -> Table:
    """The slowest `limit` of these traces, slowest first. Trace ids are never cut: on a narrow terminal the
    root and services columns are shortened (…) and the start time is left out."""
    width = width or Console().width
    wide = width >= WIDE
    id_width = max((len(t["traceID"]) for t in traces), default=16)
    rest = width - id_width - 6 - 8 - (8 if wide else 0) - 2 * (5 if wide else 4)  # the other columns and gaps
    table = Table(title="traces, slowest first", title_justify="left", box=None, header_style="dim", pad_edge=False)
    table.add_column("trace id", no_wrap=True, width=id_width)
    table.add_column("root", no_wrap=True, overflow="ellipsis", width=max(8, rest // 2))
    table.add_column("services", no_wrap=True, overflow="ellipsis", width=max(8, rest - rest // 2))
    table.add_column("spans", justify="right", no_wrap=True, width=6)
    table.add_column("duration", justify="right", no_wrap=True, width=8)
    if wide:
        table.add_column("started", no_wrap=True, width=8)
    for trace in sorted(traces, key=trace_duration, reverse=True)[:limit]:
        roots = span_tree(trace)
        root = roots[0] if roots else None
        errors = sum(1 for _, node, _ in _walk(roots) if node.error)
        spans = Text(str(len(trace["spans"])))
        if errors:
            spans.append(f" {errors}✗", style="bold red")
        started = datetime.fromtimestamp(min(s["startTime"] for s in trace["spans"]) / 1e6).strftime("%H:%M:%S")
        table.add_row(
            trace["traceID"],
            f"{root.service} {root.span['operationName']}" if root else "?",
            ", ".join(sorted(trace_services(trace))),
            spans,
            format_duration_us(trace_duration(trace)),
            *([started] if wide else []),
        )
    return table
