"""A trace in the terminal, the way Jaeger's UI draws it: an indented span tree with a timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from workshop.tracestore.durations import format_duration_us
from workshop.tracestore.model import Json, SpanNode, TraceTree, tag_text

SERVICE_STYLES = ["cyan", "magenta", "green", "yellow", "blue", "bright_red"]


MAX_VALUE_CHARS = 500  # a longer tag or log value is cut, with a note (`trace <id> --json` has all of it)
MIN_BAR_WIDTH = 12
ERROR_MARK = " ✗ error"
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


def _detail(indent: str, text: str) -> str:
    """A tag or log line: long values cut with a note, a multi-line value (a stack trace) kept indented."""
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"… ({len(text)} characters in all; --json shows them)"
    return indent + text.replace("\n", "\n" + indent + "  ")


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
    tree = TraceTree(trace)
    start, total = tree.start, max(tree.duration, 1)
    scale = max(scale_us or total, 1)
    services = tree.services
    styles = {name: SERVICE_STYLES[i % len(SERVICE_STYLES)] for i, name in enumerate(services)}
    rows = list(tree.walk())
    errors = len(tree.errors)
    width = width or Console().width

    title = Text.assemble(
        ("trace ", "bold"),
        (trace["traceID"], "bold"),
        "  ",
        (format_duration_us(total), "bold"),
        f", {len(rows)} spans",
        (f", {errors} error{'s' * (errors != 1)}" if errors else "", "bold red"),
        f"\n{len(services)} service{'s' * (len(services) != 1)}: {', '.join(services)}",
    )
    labels = [_label(node, styles) for node in rows]
    marks = [len(ERROR_MARK) if node.error else 0 for node in rows]
    layout = Layout.fit(width, max(len(label.plain) + mark for label, mark in zip(labels, marks, strict=True)))
    axis = f"0 ─ {format_duration_us(scale)}" + (" (fixed scale)" if scale_us else "")
    start_column = f"{'start':>{layout.start}} " if layout.start else ""
    header = Text(f"{'span':<{layout.label}} {start_column}{'duration':>{layout.duration}} {axis}", style="dim")
    lines: list[Text] = [title, header]
    for label, node in zip(labels, rows, strict=True):
        span = node.span
        style = styles.get(node.service, "white")
        mark = ERROR_MARK if node.error else ""  # a name cut to fit keeps its error mark
        if len(label.plain) + len(mark) <= layout.label:
            line = label
        else:
            line = label[: max(1, layout.label - len(mark) - 1)] + Text("…")
        if mark:
            line.append(mark, style="bold red")
        line.pad_right(layout.label - len(line.plain))
        line.append(" ")
        if layout.start:
            line.append(f"{format_duration_us(span['startTime'] - start):>{layout.start}} ", style="dim")
        line.append(f"{format_duration_us(span['duration']):>{layout.duration}} ")
        offset = min(int((span["startTime"] - start) / scale * layout.bar), layout.bar - 1)
        length = max(1, round(span["duration"] / scale * layout.bar))
        block = "░" if node.follows_from else "█"  # a span that follows from its parent: not waited for
        line.append(" " * offset)
        line.append(block * min(length, layout.bar - offset) or "▏", style="red" if node.error else style)
        lines.append(line)
        indent = "  " * (node.depth + 1)
        if tags:
            lines += [Text(_detail(indent, f"{t['key']}={tag_text(t['value'])}"), style="dim") for t in span["tags"]]
        for entry in span["logs"]:
            fields = {f["key"]: tag_text(f["value"]) for f in entry["fields"]}
            is_baggage = fields.get("event", "").startswith("baggage")  # baggage, baggage.dropped, ...
            if (logs and not is_baggage) or (baggage and is_baggage):
                at = format_duration_us(entry["timestamp"] - start)
                text = " ".join(f"{k}={v}" for k, v in fields.items())
                lines.append(Text(_detail(indent, f"log +{at} {text}"), style="yellow" if is_baggage else "dim"))
        if baggage:
            lines += [
                Text(_detail(indent, f"{t['key']}={tag_text(t['value'])}"), style="yellow")
                for t in span["tags"]
                if t["key"].startswith("baggage.")
            ]
    if any(node.follows_from for node in rows):
        lines.append(Text("░ follows from its parent: the parent did not wait for it", style="dim"))
    return Group(*lines)


def _label(node: SpanNode, styles: dict[str, str]) -> Text:
    style = styles.get(node.service, "white")
    label = Text("  " * node.depth)
    if node.parent is None or node.parent.service != node.service:  # name the service where it changes
        label.append(f"{node.service} ", style=f"bold {style}")
    label.append(node.operation, style=style)
    if node.follows_from:
        label.append(" ⇢", style=style)
    return label  # (render_trace adds ERROR_MARK, after cutting the name if it must)


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
    trees = sorted((TraceTree(trace) for trace in traces), key=lambda tree: tree.duration, reverse=True)
    if any(tree.errors for tree in trees[:limit]):  # say what the ✗ in the spans column means
        table.caption, table.caption_justify = "10 3✗: 10 spans, 3 of them marked as errors", "left"
    for tree in trees[:limit]:
        root = tree.root
        errors = len(tree.errors)
        spans = Text(str(len(tree.spans)))
        if errors:
            spans.append(f" {errors}✗", style="bold red")
        started = datetime.fromtimestamp(tree.start / 1e6).strftime("%H:%M:%S")
        table.add_row(
            tree.trace_id,
            f"{root.service} {root.operation}" if root else "?",
            ", ".join(tree.services),
            spans,
            format_duration_us(tree.duration),
            *([started] if wide else []),
        )
    return table
