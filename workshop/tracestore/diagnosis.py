"""The trace doctor: what is wrong with a trace, in plain words, where, why it happens and what to check.

It reads the model only (`TraceTree`), so it works on any trace: the store's, or a real Jaeger's through its
API. A finding names spans by service and operation, has a stable `kind`, and links to the lesson that
teaches the fix. Some findings need the traces around this one (`neighbours`): a hop that lost its context
shows as a second trace that started inside a span of the first.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from workshop.tracestore.durations import format_duration_us, roughly_us
from workshop.tracestore.model import CHILD_OF, Json, SpanNode, TraceTree, low_half, tag_text

SKEW_TOLERANCE_US = 1_000  # a child may start this much before its parent before it is called clock skew
QUEUE_TOLERANCE_US = 100_000  # a job's consumer may start this long after its producer span ended
MAX_BAGGAGE_BYTES = 64  # the lessons' limit for one item
MAX_BAGGAGE_ITEMS = 8
SIMILAR_NAMES = 3  # operation names of one service that differ only in values, before it is cardinality
NEARBY = 20  # across recent traces: each is compared with this many that began just before and just after it

LESSONS = {
    "step2": "step2_spans/README.md",
    "step3": "step3_tags_logs/README.md",
    "step4": "step4_distributed/README.md",
    "step5": "step5_queue/README.md",
    "step6": "step6_baggage/README.md",
    "step7": "step7_opentelemetry_shim/README.md",
    "step8": "step8_opentelemetry/README.md",
    "step9": "step9_edge_polyglot/README.md",
}
SECRET_KEY = re.compile(r"token|passw|secret|authorization|api[-_.]?key|cookie|credential|private[-_.]?key", re.I)
SECRET_VALUE = re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})|\b[Bb]earer\s+\S{8,}")
STATUS_TAGS = ("http.status_code", "http.response.status_code")
PORT_TAGS = ("net.host.port", "server.port", "host.port")
URL_TAGS = ("http.url", "url.full")
DESTINATION_TAGS = ("message_bus.destination", "messaging.destination.name", "messaging.destination")
TEMPLATE_SEGMENT = re.compile(r"^(<[^>]+>|:[\w-]+|\{[^}]+\}|\*)$")


@dataclass
class Finding:
    kind: str  # stable, for --json: lost_context, missing_parent, several_roots, clock_skew, ...
    title: str  # one line, in plain words
    detail: str  # where, naming the spans by service and operation
    causes: list[str]
    check: list[str]
    lesson: str  # step5 ...
    spans: list[str] = field(default_factory=list)  # span ids it concerns, in this trace
    traces: list[str] = field(default_factory=list)  # other traces it concerns (the other half of a hop)

    @property
    def lesson_readme(self) -> str:
        return LESSONS.get(self.lesson, "README.md")

    def as_json(self) -> Json:
        return asdict(self) | {"lesson_readme": self.lesson_readme}


def named(node: SpanNode) -> str:
    """`gateway's send_clean_job`, `contributors' contributors`."""
    return possessive(node.service, node.operation)


def possessive(service: str, operation: str) -> str:
    return f"{service}{chr(39) if service.endswith('s') else chr(39) + 's'} {operation}"


def diagnose(trace: Json, neighbours: Iterable[Json] = ()) -> list[Finding]:
    """The findings about `trace`; `neighbours` are the traces around it in time (others may be among them)."""
    tree = TraceTree(trace)
    return findings_for(tree, [TraceTree(other) for other in neighbours if other["traceID"] != tree.trace_id])


def findings_for(tree: TraceTree, others: list[TraceTree], names: NameIndex | None = None) -> list[Finding]:
    """`diagnose`, on trees already built (others: not `tree` itself); `names`: the operation names of all of
    them, when they are already counted."""
    findings: list[Finding] = []
    findings += lost_context(tree, others)
    findings += missing_parents(tree)
    findings += several_roots(tree)
    findings += clock_skew(tree)
    findings += two_widths(tree, others)
    findings += errors_not_marked(tree)
    findings += secrets(tree)
    findings += oversized_baggage(tree)
    findings += baggage_lost(tree)
    findings += cardinality(tree, names if names is not None else name_index([tree, *others]))
    return findings


# --- a hop that lost its context ----------------------------------------------------------------------------


_CALLERS: weakref.WeakKeyDictionary[TraceTree, list[SpanNode]] = weakref.WeakKeyDictionary()


def _caller_spans(tree: TraceTree) -> list[SpanNode]:
    """Client and producer spans with no child of another service: the call's other half is not here."""
    found = _CALLERS.get(tree)
    if found is None:
        found = _CALLERS[tree] = [
            node
            for node in tree.spans
            if node.kind in ("client", "producer") and not any(child.service != node.service for child in node.children)
        ]
    return found


def _answers(caller: SpanNode, root: SpanNode) -> bool:
    """Could `root` (a span that began a trace of its own) be the other half of `caller`'s call?"""
    if root.service == caller.service or root.kind not in ("server", "consumer", ""):
        return False
    late = QUEUE_TOLERANCE_US if caller.kind == "producer" else 0
    if not caller.start <= root.start <= caller.end + late:
        return False
    peer = tag_text(caller.tags.get("peer.service", ""))
    if peer:
        return peer == root.service
    destination = next((tag_text(caller.tags[key]) for key in DESTINATION_TAGS if key in caller.tags), "")
    if destination:
        return destination == next((tag_text(root.tags[key]) for key in DESTINATION_TAGS if key in root.tags), "")
    port = _port(caller)
    return port is not None and port == next((tag_text(root.tags[key]) for key in PORT_TAGS if key in root.tags), "")


def _port(caller: SpanNode) -> str | None:
    url = next((tag_text(caller.tags[key]) for key in URL_TAGS if key in caller.tags), "")
    try:
        return str(urlsplit(url).port) if url and urlsplit(url).port else None
    except ValueError:
        return None


def _carrier(caller: SpanNode) -> tuple[str, str]:
    """Where the context should have travelled, and the lesson that carries it there."""
    if caller.kind == "producer":
        return "the job's body (the trace context travels inside the message)", "step5"
    return "the request's headers (uber-trace-id, traceparent or b3)", "step4"


def lost_context(tree: TraceTree, others: list[TraceTree]) -> list[Finding]:
    findings = []
    for caller in _caller_spans(tree):  # this trace made the call; another trace began where it arrived
        for other in others:
            root = next((r for r in other.roots if not r.span["references"] and _answers(caller, r)), None)
            if root is not None:
                findings.append(_lost(caller, root, other.trace_id, caller_here=True))
    for root in tree.roots:  # this trace began where another trace's call arrived
        if root.span["references"]:
            continue
        for other in others:
            caller = next((c for c in _caller_spans(other) if _answers(c, root)), None)
            if caller is not None:
                findings.append(_lost(caller, root, other.trace_id, caller_here=False))
    return findings


def _lost(caller: SpanNode, root: SpanNode, other: str, caller_here: bool) -> Finding:
    carrier, lesson = _carrier(caller)
    into = roughly_us(max(root.start - caller.start, 0))
    what = "job" if caller.kind == "producer" else "request"
    return Finding(
        kind="lost_context",
        title=f"{named(root)} started a trace of its own {into} into {named(caller)}: the {what} carried no trace "
        f"context (or {root.service} did not read it)",
        detail=f"{named(caller)} is in {'this trace' if caller_here else 'trace ' + other}, {named(root)} in "
        f"{'trace ' + other if caller_here else 'this one'}: one request, two traces. The context should have been "
        f"in {carrier}.",
        causes=[
            f"{caller.service} did not inject the context into the {what} (no inject, or into a carrier it then "
            "did not send)",
            f"{root.service} did not extract it (or started its span without the extracted context as its parent)",
            "the two services use propagation formats that the other does not read",
        ],
        check=[
            f"in {caller.service}: tracer.inject(...) into the {what}'s {'body' if what == 'job' else 'headers'}",
            f"in {root.service}: tracer.extract(...) and child_of=/follows_from= that context",
        ],
        lesson=lesson,
        spans=[caller.id if caller_here else root.id],
        traces=[other],
    )


# --- the tree itself ----------------------------------------------------------------------------------------------


def missing_parents(tree: TraceTree) -> list[Finding]:
    """One finding a missing parent, naming every span that waits for it."""
    orphans: dict[str, list[SpanNode]] = {}
    for node in tree.roots:
        parent = node.missing_parent
        if parent is not None:
            orphans.setdefault(parent, []).append(node)
    findings = []
    for parent, nodes in orphans.items():
        names = _counted(named(node) for node in nodes)
        waiting = f"{names} names" if len(nodes) == 1 else f"{len(nodes)} spans ({names}) name"
        findings.append(
            Finding(
                kind="missing_parent",
                title=f"{waiting} a parent span {parent} that never arrived",
                detail=f"{names} {'is a child' if len(nodes) == 1 else 'are children'} of span {parent}, which "
                "this trace does not hold: each shows as a root of its own (Jaeger warns 'invalid parent span "
                "IDs; skipping clock skew adjustment').",
                causes=[
                    "the parent span was never finished (span.finish() / end() not called, or not on every path)",
                    "the process that made it exited before its tracer sent it (close and flush the tracer at exit)",
                    "it was dropped on the way: the tracer's queue was full, or its UDP datagram was too large",
                    "its service sampled it out while this one kept its child (sampling decided in two places)",
                ],
                check=["the parent's service's log: dropped spans, export errors", "that every span is finished"],
                lesson="step2",
                spans=[node.id for node in nodes],
            )
        )
    return findings


def _counted(names: Iterable[str]) -> str:
    """`contributors' github_request ×3, contributors' clean_github_data`."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(name + (f" ×{count}" if count > 1 else "") for name, count in counts.items())


def several_roots(tree: TraceTree) -> list[Finding]:
    """Spans that begin the trace, each with no parent at all (a span whose parent is missing is said above)."""
    roots = [root for root in tree.roots if not root.span["references"]]
    if len(roots) < 2:
        return []
    names = ", ".join(named(root) for root in roots[:4]) + (" ..." if len(roots) > 4 else "")
    return [
        Finding(
            kind="several_roots",
            title=f"one trace, {len(roots)} roots: {names}",
            detail="A trace has one root, the request's first span; each of these began the trace anew, with its "
            "id but without a parent span.",
            causes=[
                "a service read only the trace id from what it received, not the parent span id",
                "spans started with an explicit trace id and no parent (a test, a replay, a hand-made header)",
            ],
            check=["child_of= or the extracted context where each root is started"],
            lesson="step2",
            spans=[root.id for root in roots],
        )
    ]


def clock_skew(tree: TraceTree) -> list[Finding]:
    findings = []
    for node in tree.spans:
        parent = node.parent
        if parent is None or node.reference != CHILD_OF or parent.process == node.process:
            continue
        early = parent.start - node.start
        if early > SKEW_TOLERANCE_US:
            findings.append(
                Finding(
                    kind="clock_skew",
                    title=f"{named(node)} starts {format_duration_us(early)} before its parent {named(parent)}",
                    detail="A child cannot begin before its parent: the two processes' clocks disagree. Jaeger "
                    "shifts such spans to fit, and says 'skipping clock skew adjustment' when it cannot.",
                    causes=["the machines' clocks differ (no NTP, a container's clock, a laptop after sleep)"],
                    check=["`date` on both machines; NTP", "that both spans' times come from the same clock kind"],
                    lesson="step4",
                    spans=[node.id, parent.id],
                )
            )
    return findings


def two_widths(tree: TraceTree, others: list[TraceTree]) -> list[Finding]:
    mine = low_half(tree.trace_id)
    twins = [o.trace_id for o in others if low_half(o.trace_id) == mine and len(o.trace_id) != len(tree.trace_id)]
    if not twins:
        return []
    return [
        Finding(
            kind="two_widths",
            title=f"one request, two trace ids: {tree.trace_id} and {twins[0]} share their low 64 bits",
            detail="One service wrote a 64-bit trace id, another a 128-bit one with other high bits: the spans "
            "of one request are split between two traces.",
            causes=["a jaeger-client (64-bit ids) and an OpenTelemetry service (128-bit) that each began the trace"],
            check=["jaeger-client's generate_128bit_trace_id, or the propagator that reads the other's header"],
            lesson="step7",
            traces=twins,
        )
    ]


# --- what the spans say ---------------------------------------------------------------------------------------------


def errors_not_marked(tree: TraceTree) -> list[Finding]:
    findings = []
    for node in tree.spans:
        status = next((tag_text(node.tags[key]) for key in STATUS_TAGS if key in node.tags), "")
        if status.isascii() and status.isdigit() and int(status) >= 500 and not node.error:
            findings.append(
                Finding(
                    kind="error_not_marked",
                    title=f"{named(node)} answered {status} but is not marked as an error",
                    detail="Searches for errors (error=true, status ERROR) will not find this span, nor the trace.",
                    causes=["the code set the status tag and not the error mark (flask-opentracing does exactly this)"],
                    check=["span.set_tag('error', True) (OpenTracing) or span.set_status(StatusCode.ERROR)"],
                    lesson="step3",
                    spans=[node.id],
                )
            )
    return findings


def _fields(node: SpanNode) -> Iterable[tuple[str, str, str]]:
    """(where, key, value) for every tag, log field and baggage item of the span."""
    for entry in node.span["tags"]:
        where = "baggage" if entry["key"].startswith("baggage.") else "tag"
        yield where, entry["key"].removeprefix("baggage."), tag_text(entry["value"])
    for log in node.span["logs"]:
        fields = {f["key"]: tag_text(f["value"]) for f in log["fields"]}
        if fields.get("event", "").startswith("baggage") and "key" in fields:
            yield "baggage", fields["key"], fields.get("value", "")
        else:
            yield from (("log field", key, value) for key, value in fields.items())


def secrets(tree: TraceTree) -> list[Finding]:
    """One finding a field that looks like a credential (by where it is and its name), naming every span."""
    found: dict[tuple[str, str, str, str], list[SpanNode]] = {}
    for node in tree.spans:
        for where, key, value in _fields(node):
            by_key = bool(SECRET_KEY.search(key)) and value not in ("", "-", "none", "null")
            if by_key or SECRET_VALUE.search(value):
                if where == "tag" and "otel.scope.name" in node.tags:
                    where = "attribute"  # OpenTelemetry's word
                why = "its name" if by_key else "its value's shape"
                found.setdefault((named(node), where, key, why), []).append(node)
    findings = []
    for (name, where, key, why), nodes in found.items():
        times = f" (in {len(nodes)} spans)" if len(nodes) > 1 else ""
        findings.append(
            Finding(
                kind="secret",
                title=f"{name} has a{'n' if where[0] in 'aeiou' else ''} {where} {key!r} that looks like a "
                f"credential (by {why}){times}",
                detail="Spans are read by everyone who can open the trace store, and baggage travels to "
                "every service downstream, third parties included. (The value is not shown here.)",
                causes=["a token, password or Authorization header recorded or put in baggage"],
                check=[f"where {key!r} is set: record that a credential was used, never the credential"],
                lesson="step6",
                spans=[node.id for node in nodes],
            )
        )
    return findings


def oversized_baggage(tree: TraceTree) -> list[Finding]:
    findings = []
    for node in tree.spans:
        items = {key: value for where, key, value in _fields(node) if where == "baggage"}
        large = [key for key, value in items.items() if len(value.encode()) > MAX_BAGGAGE_BYTES]
        if large or len(items) > MAX_BAGGAGE_ITEMS:
            items_ = "item" if len(large) == 1 else "items"
            what = f"{len(large)} {items_} over {MAX_BAGGAGE_BYTES} bytes ({', '.join(large[:3])})" if large else ""
            many = f"{len(items)} items" if len(items) > MAX_BAGGAGE_ITEMS else ""
            findings.append(
                Finding(
                    kind="oversized_baggage",
                    title=f"{named(node)} carries heavy baggage: {' and '.join(x for x in (what, many) if x)}",
                    detail="Every item travels in every request and job downstream: its cost is paid on every hop.",
                    causes=["a value that belongs in a tag (or a database) put in baggage"],
                    check=["what each service downstream really needs to read"],
                    lesson="step6",
                    spans=[node.id],
                )
            )
    return findings


NOT_RECEIVED = "-"  # the lessons tag `baggage.<key>` with the item a service read, and with this when none came


def baggage_lost(tree: TraceTree) -> list[Finding]:
    """A span of another service says it got no baggage item that a span above it, in this trace, set."""
    findings = []
    for node in tree.spans:
        wanted = [
            entry["key"].removeprefix("baggage.")
            for entry in node.span["tags"]
            if entry["key"].startswith("baggage.") and tag_text(entry["value"]) == NOT_RECEIVED
        ]
        for key in wanted:
            setter = next(
                (up for up in node.ancestors() if up.service != node.service and _sets_baggage(up, key)), None
            )
            if setter is None:
                continue
            findings.append(
                Finding(
                    kind="baggage_lost",
                    title=f"{named(node)} did not get the baggage item {key!r} that {named(setter)} set",
                    detail="The trace context arrived (the span is in this trace) but the baggage did not: it "
                    "travels beside the context (the uberctx-* headers, W3C's `baggage`) and must be sent and read "
                    "with it.",
                    causes=[
                        "the context was read by a call that drops the baggage (the OpenTracing shim's extract())",
                        "the item was kept where nothing sends it (the shim's span.set_baggage_item())",
                        "the item was set after the call that should have carried it",
                        "the sender's propagators write the context but not the baggage",
                    ],
                    check=[
                        f"in {setter.service}: that the item is set before the call, in the context that is sent",
                        f"in {node.service}: that the context and its baggage are read and made current together",
                    ],
                    lesson="step7"
                    if "otel.scope.name" in node.tags
                    else "step6",  # OpenTelemetry's rules, or jaeger-client's
                    spans=[node.id, setter.id],
                )
            )
    return findings


def _sets_baggage(node: SpanNode, key: str) -> bool:
    return any(where == "baggage" and item == key and value != NOT_RECEIVED for where, item, value in _fields(node))


def _shape(name: str) -> tuple[str, int] | None:
    """`GET /contributors/pallets/flask` -> ("GET", 3): a verb and a path, for comparing names by shape."""
    verb, _, path = name.partition(" ")
    if not path.startswith("/"):
        return None
    return verb, path.count("/")


NameIndex = dict[tuple[str, tuple[str, int]], set[str]]  # (service, (verb, path depth)) -> operation names


def name_index(trees: Iterable[TraceTree]) -> NameIndex:
    """The operation names shaped like `VERB /a/b` with no route template in them, by service and shape."""
    names: NameIndex = {}
    for one in trees:
        for node in one.spans:
            shape = _shape(node.operation)
            segments = node.operation.partition(" ")[2].split("/")
            if shape is not None and not any(TEMPLATE_SEGMENT.match(segment) for segment in segments):
                names.setdefault((node.service, shape), set()).add(node.operation)
    return names


def cardinality(tree: TraceTree, names: NameIndex) -> list[Finding]:
    """Operation names that embed values (ids, names): seen across the traces of one service."""
    findings = []
    for node in tree.spans:
        shape = _shape(node.operation)
        similar = names.get((node.service, shape), set()) if shape else set()
        if len(similar) >= SIMILAR_NAMES and node.operation in similar:
            findings.append(
                Finding(
                    kind="cardinality",
                    title=f"{node.service} names its spans with values: {node.operation!r} and "
                    f"{len(similar) - 1} more like it",
                    detail="An operation name is a kind of request, not one request: with values in it, every "
                    "repository is an operation of its own, and the search page, the dependencies and any metrics "
                    "split into thousands.",
                    causes=["the span is named from the URL rather than from the route"],
                    check=["name it from the route (GET /contributors/<owner>/<repo>); put the values in tags"],
                    lesson="step3",
                    spans=[node.id],
                )
            )
            break  # once per trace and service is enough
    return findings


# --- across the recent traces -------------------------------------------------------------------------------------


@dataclass
class Group:
    kind: str
    title: str  # "12 traces lost the context between gateway and worker"
    lesson: str
    traces: list[str]


def diagnose_recent(traces: list[Json]) -> list[Group]:
    """Findings grouped across these traces (each diagnosed with the others as its neighbours), most first."""
    groups: dict[tuple[str, str], Group] = {}
    trees = sorted((TraceTree(trace) for trace in traces), key=lambda tree: tree.start)
    names = name_index(trees)
    for index, tree in enumerate(trees):
        nearby = [other for other in trees[max(0, index - NEARBY) : index + NEARBY + 1] if other is not tree]
        for finding in findings_for(tree, nearby, names):
            key = (finding.kind, _between(finding))
            group = groups.setdefault(key, Group(finding.kind, key[1], finding.lesson, []))
            if tree.trace_id not in group.traces:
                group.traces.append(tree.trace_id)
    return sorted(groups.values(), key=lambda g: len(g.traces), reverse=True)


def _between(finding: Finding) -> str:
    """What a group of findings is about, without the values that differ from trace to trace."""
    words = {
        "lost_context": "lost the trace context between services",
        "missing_parent": "have a span whose parent never arrived",
        "several_roots": "have several roots",
        "clock_skew": "have a child that starts before its parent (clock skew)",
        "two_widths": "were split between a 64-bit and a 128-bit trace id",
        "error_not_marked": "have a 5xx span not marked as an error",
        "secret": "record something that looks like a credential",
        "oversized_baggage": "carry heavy baggage",
        "baggage_lost": "lost a baggage item on the way downstream",
        "cardinality": "name spans with values (operation names that embed ids)",
    }
    if finding.kind == "lost_context":
        pair = re.findall(r"^(\S+?)'s? .* into (\S+?)'s? ", finding.title)
        if pair:
            return f"lost the trace context between {pair[0][1]} and {pair[0][0]}"
    return words.get(finding.kind, finding.kind)
