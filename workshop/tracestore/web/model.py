"""What the trace viewer's pages show, computed from Jaeger's JSON model: summaries, span rows, comparisons,
the service graph. Plain data for the templates; no HTML here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from workshop.tracestore.durations import format_duration_us
from workshop.tracestore.model import Json, SpanNode, TraceTree, tag_text

# Colour-blind-safe, readable on white and on a projector (Okabe-Ito, darkened where too light)
SERVICE_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8A6D00", "#56B4E9", "#7F3C8D", "#4D4D4D"]


def colours(services: list[str]) -> dict[str, str]:
    return {name: SERVICE_COLOURS[i % len(SERVICE_COLOURS)] for i, name in enumerate(sorted(services))}


def round_step(at_least_us: float) -> int:
    """The smallest 1, 2 or 5 times a power of ten (in µs) that is at least `at_least_us`: an axis's step."""
    power = 1
    while True:
        for factor in (1, 2, 5):
            if factor * power >= at_least_us:
                return factor * power
        power *= 10


def when(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dataclass
class SpanRow:
    """One span of a trace, as its row in the waterfall."""

    span: Json
    id: str
    operation: str
    service: str
    depth: int
    offset_us: int
    left: float  # % of the timeline
    width: float  # % of the timeline
    error: bool
    reference: str  # CHILD_OF, FOLLOWS_FROM, or "" for a root
    children: list[SpanRow] = field(default_factory=list)

    @property
    def duration(self) -> str:
        return format_duration_us(self.span["duration"])

    @property
    def offset(self) -> str:
        return format_duration_us(self.offset_us)

    @property
    def duration_place(self) -> str:
        """Where the bar's duration is written: after the bar, before it, or inside a bar that fills the row."""
        if self.left + self.width < 80:
            return "after"
        return "before" if self.left >= 20 else "inside"

    @property
    def duration_at(self) -> float:
        """The % of the timeline the duration's text is anchored at."""
        return self.left if self.duration_place == "before" else self.left + self.width

    @property
    def tags(self) -> list[tuple[str, str]]:
        return [(t["key"], tag_text(t["value"])) for t in self.span["tags"] if not t["key"].startswith("baggage.")]

    @property
    def baggage(self) -> list[tuple[str, str]]:
        """What a span records of baggage: its baggage.* tags and its baggage events."""
        found = [
            (t["key"].removeprefix("baggage."), tag_text(t["value"]))
            for t in self.span["tags"]
            if t["key"].startswith("baggage.")
        ]
        for log in self.span["logs"]:
            fields = {f["key"]: tag_text(f["value"]) for f in log["fields"]}
            event = fields.get("event", "")
            if event == "baggage" and "value" in fields:  # jaeger-client's log of set_baggage_item: the value
                found.append((fields.get("key", "?"), fields["value"]))
            elif event.startswith("baggage"):  # another baggage event (dropped, ...): all it says
                found.append((fields.get("key", "?"), " ".join(f"{k}={v}" for k, v in fields.items())))
        return found

    def logs(self, trace_start: int) -> list[tuple[str, list[tuple[str, str]]]]:
        return [
            (
                "+" + format_duration_us(log["timestamp"] - trace_start),
                [(f["key"], tag_text(f["value"])) for f in log["fields"]],
            )
            for log in self.span["logs"]
        ]


class Timed:
    """What a trace's view and its summary both say of its time."""

    duration_us: int
    start_us: int

    @property
    def duration(self) -> str:
        return format_duration_us(self.duration_us)

    @property
    def started(self) -> str:
        return when(self.start_us)


@dataclass
class TraceView(Timed):
    trace: Json
    roots: list[SpanRow]
    rows: list[SpanRow]  # every span, in display order
    start_us: int
    duration_us: int
    services: list[str]
    colours: dict[str, str]
    processes: dict[str, Json]  # by span id

    @property
    def trace_id(self) -> str:
        return self.trace["traceID"]

    @property
    def depth(self) -> int:
        return max((row.depth for row in self.rows), default=0) + 1

    @property
    def errors(self) -> int:
        return sum(1 for row in self.rows if row.error)

    @property
    def root(self) -> SpanRow | None:
        return self.roots[0] if self.roots else None

    def ticks(self, most: int = 5) -> list[tuple[float, str]]:
        """(position %, label) for the time axis: round steps (1, 2 or 5 of a unit), at most `most` of them."""
        step = round_step(self.duration_us / max(most - 1, 1))
        return [(100 * at / self.duration_us, format_duration_us(at)) for at in range(0, self.duration_us + 1, step)]


def trace_view(trace: Json) -> TraceView:
    tree = TraceTree(trace)
    start, total = tree.start, max(tree.duration, 1)
    rows: dict[int, SpanRow] = {}  # by id() of the tree's node
    for node in tree.walk():  # parents before their children
        row = _row(node, start, total)
        rows[id(node)] = row
        if node.parent is not None:
            rows[id(node.parent)].children.append(row)
    services = tree.services
    return TraceView(
        trace,
        [rows[id(node)] for node in tree.roots],
        list(rows.values()),
        start,
        total,
        services,
        colours(services),
        {node.id: node.process for node in tree.spans},
    )


def _row(node: SpanNode, start: int, total: int) -> SpanRow:
    return SpanRow(
        span=node.span,
        id=node.id,
        operation=node.operation,
        service=node.service,
        depth=node.depth,
        offset_us=node.start - start,
        left=100 * (node.start - start) / total,
        width=max(100 * node.duration / total, 0.2),
        error=node.error,
        reference=_reference_shown(node),
    )


def _reference_shown(node: SpanNode) -> str:
    """CHILD_OF or FOLLOWS_FROM as the span's first reference says, when that reference is its parent."""
    refs = node.span["references"]
    return refs[0]["refType"] if node.parent is not None and refs[0]["spanID"] == node.parent.id else ""


@dataclass
class TraceSummary(Timed):
    """One line of the search results."""

    trace_id: str
    root: str
    root_service: str
    duration_us: int
    spans: int
    services: list[str]
    errors: int
    start_us: int
    request: str = ""  # what it was asked: the repository, or the path

    @property
    def started_time(self) -> str:
        """The time of day alone (the date is in `started`)."""
        return self.started.split(" ")[1]


def summary(trace: Json) -> TraceSummary:
    tree = TraceTree(trace)
    root = tree.root
    return TraceSummary(
        trace_id=tree.trace_id,
        root=root.operation if root else "?",
        root_service=root.service if root else "?",
        duration_us=max(tree.duration, 1),
        spans=len(tree.spans),
        services=tree.services,
        errors=len(tree.errors),
        start_us=tree.start,
        request=asked(tree),
    )


URL_TAGS = ("http.target", "url.path", "http.url", "url.full")  # OpenTracing's and OpenTelemetry's names


def asked(tree: TraceTree) -> str:
    """What a trace's request asked for, to tell search results apart: the `github.repo` a span recorded,
    else the root's path (from its URL tag); "" when no span says."""
    for node in tree.walk():
        if "github.repo" in node.tags:
            return tag_text(node.tags["github.repo"])
    root = tree.root.tags if tree.root else {}
    url = next((tag_text(root[key]) for key in URL_TAGS if key in root), "")
    return urlsplit(url).path if "://" in url else url


@dataclass
class Bar:
    """A trace in the durations chart: x, y and height in the chart's own units (0-100)."""

    summary: TraceSummary
    x: float
    height: float
    width: float


MAX_BAR_WIDTH = 2.5  # % of the chart


def duration_bars(summaries: list[TraceSummary]) -> list[Bar]:
    """Oldest left, newest right; height by duration on a square-root scale, so a slow trace stands out
    without flattening the rest."""
    if not summaries:
        return []
    longest = max(s.duration_us for s in summaries) or 1
    ordered = sorted(summaries, key=lambda s: s.start_us)
    step = 100 / len(ordered)
    width = min(0.7 * step, MAX_BAR_WIDTH)  # a few traces are a few thin bars, not blocks
    return [
        Bar(s, i * step + step / 2, max(2.0, 100 * math.sqrt(s.duration_us / longest)), width)
        for i, s in enumerate(ordered)
    ]


@dataclass
class CompareRow:
    label: str
    depth: int
    service: str
    a: SpanRow | None
    b: SpanRow | None

    @property
    def change(self) -> str:
        if self.a is None:
            return "only in B"
        if self.b is None:
            return "only in A"
        delta = self.b.span["duration"] - self.a.span["duration"]
        sign = "+" if delta >= 0 else "−"
        return f"{sign}{format_duration_us(abs(delta))}"

    @property
    def slower(self) -> bool:
        return self.a is not None and self.b is not None and self.b.span["duration"] > self.a.span["duration"]


HOW_COMPARE_MATCHES = (
    "Spans pair up when they do the same work: the two roots with each other when one service made both, "
    "whatever their names (a lesson may rename its entry span); then every other span with the span of the "
    "same service and operation, the n-th with the n-th in the order shown. The bars are each on its own "
    "trace's time scale."
)


def compare(a: TraceView, b: TraceView) -> list[CompareRow]:
    """The two traces span by span, A's order first, then what only B has (see HOW_COMPARE_MATCHES)."""
    pairs: dict[int, SpanRow] = {}  # id() of A's row -> B's row
    for root_a, root_b in zip(a.roots, b.roots, strict=False):
        if root_a.service == root_b.service:
            pairs[id(root_a)] = root_b
    taken = {id(row) for row in pairs.values()}
    waiting: dict[tuple[str, str], list[SpanRow]] = {}  # B's unpaired rows by (service, operation), in order
    for row in b.rows:
        if id(row) not in taken:
            waiting.setdefault((row.service, row.operation), []).append(row)
    for row in a.rows:
        candidates = waiting.get((row.service, row.operation))
        if id(row) not in pairs and candidates:
            pairs[id(row)] = candidates.pop(0)
    paired = {id(row) for row in pairs.values()}
    rows = [_compare_row(row, pairs.get(id(row))) for row in a.rows]
    return rows + [_compare_row(None, row) for row in b.rows if id(row) not in paired]


def _compare_row(a: SpanRow | None, b: SpanRow | None) -> CompareRow:
    shown = a if a is not None else b
    label = shown.operation if not (a and b) or a.operation == b.operation else f"{a.operation} / {b.operation}"
    return CompareRow(label, shown.depth, shown.service, a, b)


@dataclass
class Graph:
    nodes: dict[str, tuple[float, float]]  # service -> (x, y) centre
    edges: list[tuple[str, str, int]]
    width: int
    height: int


def dependency_graph(links: list[Json], services: list[str]) -> Graph:
    """Services in columns by how many calls from the entry they are (left to right), calls as arrows."""
    names = sorted(set(services) | {link["parent"] for link in links} | {link["child"] for link in links})
    parents: dict[str, set[str]] = {name: set() for name in names}
    for link in links:
        if link["parent"] != link["child"]:
            parents[link["child"]].add(link["parent"])
    level: dict[str, int] = {}
    for name in names:  # longest path from a root; cycles are cut at the first revisit
        stack, seen = [(name, 0)], set()
        depth = 0
        while stack:
            current, d = stack.pop()
            depth = max(depth, d)
            if current in seen:
                continue
            seen.add(current)
            stack += [(p, d + 1) for p in parents[current]]
        level[name] = depth
    columns: dict[int, list[str]] = {}
    for name in names:
        columns.setdefault(level[name], []).append(name)
    nodes = {}
    for column, members in columns.items():
        for row, name in enumerate(members):
            nodes[name] = (110 + column * 330, 60 + row * 110)
    width = 220 + 330 * max(columns, default=0)
    height = 120 + 110 * (max((len(m) for m in columns.values()), default=1) - 1)
    edges = [(link["parent"], link["child"], link["callCount"]) for link in links]
    return Graph(nodes, edges, width, height)
