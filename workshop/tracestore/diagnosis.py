"""The trace doctor: what is wrong with a trace, in plain words, where, why it happens and what to check.

It reads the model only (`TraceTree`), so it works on any trace: the store's, or a real Jaeger's through its
API. A finding names spans by service and operation, has a stable `kind`, and links to the lesson that
teaches the fix. Some findings need the traces around this one (`neighbours`): a hop that lost its context
shows as a second trace that started inside a span of the first, and one request's 64-bit and 128-bit halves
are two traces.
"""

from __future__ import annotations

import bisect
import functools
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from ipaddress import ip_address
from urllib.parse import urlsplit

from workshop.tracestore.durations import format_duration_us, roughly_us
from workshop.tracestore.model import CHILD_OF, Json, SpanNode, TraceTree, low_half, tag_text

SKEW_TOLERANCE_US = 1_000  # a child may start before (or end after) its parent by this much before it is clock skew
# ... but a server's span may end after its client's on one clock: it records its end once the answer is sent,
# which the client may have read first (Node.js's, OpenTelemetry's WSGI middleware; ms on a busy laptop). Unless
# the two spans' hosts are known to differ, ending after is clock skew only beyond this.
LATE_TOLERANCE_US = 100_000
HOST_TAGS = ("host.id", "host.ip", "host.name", "ip", "hostname")  # a process's host, as Jaeger's adjuster reads it
QUEUE_TOLERANCE_US = 100_000  # a job's consumer may start this long after its producer span ended
NEIGHBOURS_US = 10_000_000  # the traces around one: those that began this long before its start or after its end
MAX_BAGGAGE_BYTES = 64  # the lessons' limit for one item
MAX_BAGGAGE_ITEMS = 8
SIMILAR_NAMES = 3  # names of one service that differ at one place only, before it is cardinality
VALUE_NAMES = 2  # names of one service that differ only in what looks like a value (digits, ids)

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
STATUS_TAGS = ("http.status_code", "http.response.status_code")
PORT_TAGS = ("net.host.port", "server.port", "host.port")
URL_TAGS = ("http.url", "url.full")
PATH_TAGS = ("http.target", "url.path")  # a server span's path (http.target may hold the query too)
DESTINATION_TAGS = ("message_bus.destination", "messaging.destination.name", "messaging.destination")
MESSAGE_ID_TAGS = ("job.id", "messaging.message.id", "messaging.message_id")  # one job's id, on both its sides


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
    carrier: str = ""  # lost_context: where the context should have travelled, and in which format
    matched: str = ""  # lost_context: how its two halves were told apart from other traces, and how sure that is

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
    others = [TraceTree(other) for other in neighbours if other["traceID"] != tree.trace_id]
    return findings_for(tree, Around([tree, *others]))


class Around:
    """The traces a diagnosis considers together: the hops between them paired one to one, their operation
    names counted, and which of them share the low half of their trace id."""

    def __init__(self, trees: list[TraceTree]):
        self.trees = trees
        self.hops = pair_hops(trees)
        self.names = name_index(trees)
        self.by_low_half: dict[str, list[TraceTree]] = {}
        for tree in trees:
            self.by_low_half.setdefault(low_half(tree.trace_id), []).append(tree)

    def twins(self, tree: TraceTree) -> list[TraceTree]:
        """The traces of the same request with the other trace-id width."""
        alike = self.by_low_half.get(low_half(tree.trace_id), [])
        return [other for other in alike if len(other.trace_id) != len(tree.trace_id)]


def findings_for(tree: TraceTree, around: Around) -> list[Finding]:
    """`diagnose`, on trees already built: `around` holds `tree` and the traces around it."""
    twins = around.twins(tree)
    findings: list[Finding] = []
    findings += [_lost(hop, tree.trace_id) for hop in around.hops.get(tree.trace_id, [])]
    findings += missing_parents(tree, twins)
    findings += cycles(tree)
    findings += several_roots(tree)
    findings += clock_skew(tree)
    findings += two_widths(tree, twins)
    findings += errors_not_marked(tree)
    findings += secrets(tree)
    findings += oversized_baggage(tree)
    findings += baggage_lost(tree)
    findings += cardinality(tree, around.names)
    return findings


# --- who traced a span, and what they write and read -------------------------------------------------------------


@dataclass(frozen=True)
class Tracer:
    name: str  # as a learner knows it: jaeger-client, OpenTelemetry Python, Traefik (OpenTelemetry Go)
    header: str  # the trace context it writes and reads unless told otherwise
    configurable: bool  # its propagators are a setting (OTEL_PROPAGATORS), so two of them may disagree


LANGUAGES = {"python": "Python", "nodejs": "Node.js", "go": "Go", "java": "Java", "dotnet": ".NET", "ruby": "Ruby"}


def _process_tags(node: SpanNode) -> dict[str, str]:
    """The tags of the span's process (OpenTelemetry's resource), as text."""
    return {entry["key"]: tag_text(entry["value"]) for entry in node.process.get("tags") or []}


def tracer_of(node: SpanNode) -> Tracer | None:
    """The tracer that made the span, from what its process (or, sent as Zipkin, the span) says; None if unknown."""
    said = _process_tags(node)
    if node.service == "traefik":
        return Tracer("Traefik, OpenTelemetry Go", "traceparent", True)
    if "jaeger.version" in said:
        return Tracer("jaeger-client", "uber-trace-id", False)
    tags = node.tags
    sdk = said.get("telemetry.sdk.name") or tag_text(tags.get("telemetry.sdk.name", ""))
    if sdk == "opentelemetry" or "otel.scope.name" in tags or "otel.library.name" in tags:
        language = said.get("telemetry.sdk.language") or tag_text(tags.get("telemetry.sdk.language", ""))
        name = f"OpenTelemetry {LANGUAGES.get(language, language)}".strip()
        return Tracer(name, "traceparent", True)
    return None


def _scope(node: SpanNode) -> str:
    return tag_text(node.tags.get("otel.scope.name", node.tags.get("otel.library.name", "")))


def _instrumented(node: SpanNode) -> bool:
    """Made by an instrumentation (or a proxy) that injects and extracts the context itself: none to forget."""
    return node.service == "traefik" or "instrumentation" in _scope(node)


def _polyglot(*nodes: SpanNode) -> bool:
    """Traefik, or a service in another language than Python: lesson 9's matter."""
    for node in nodes:
        said = _process_tags(node)
        language = said.get("telemetry.sdk.language") or tag_text(node.tags.get("telemetry.sdk.language", ""))
        if node.service == "traefik" or language not in ("", "python"):
            return True
    return False


# --- a hop that lost its context ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """A call whose other half began a trace of its own: the caller span, the root span that answered it."""

    caller: SpanNode
    caller_trace: str
    root: SpanNode
    root_trace: str
    matched: str  # how the two were paired, and how sure that is


def _caller_spans(tree: TraceTree) -> list[SpanNode]:
    """Client and producer spans with no child of another service: the call's other half is not here."""
    return [
        node
        for node in tree.spans
        if node.kind in ("client", "producer") and not any(child.service != node.service for child in node.children)
    ]


def _root_spans(tree: TraceTree) -> list[SpanNode]:
    """Spans that began this trace with no reference at all: where another trace's call may have arrived."""
    return [root for root in tree.roots if not root.span["references"] and root.kind in ("server", "consumer", "")]


def _first(node: SpanNode, keys: tuple[str, ...]) -> str:
    tags = node.tags
    return next((tag_text(tags[key]) for key in keys if key in tags), "")


def _url(node: SpanNode) -> tuple[str, str, str] | None:
    """(host, port, path) of the URL the span called or served, if it has one that parses."""
    url = _first(node, URL_TAGS)
    if not url:
        return None
    try:
        parts = urlsplit(url)
        return (parts.hostname or "", str(parts.port or ""), parts.path)
    except ValueError:
        return None


def _is_address(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _served_path(root: SpanNode) -> str:
    path = _first(root, PATH_TAGS).partition("?")[0]
    if path:
        return path
    url = _url(root)
    return url[2] if url else ""


def _match(caller: SpanNode, root: SpanNode) -> str | None:
    """How `root` (a span that began a trace of its own) is known to answer `caller`'s call, or None if it is not.
    What the caller names decides: a job id both carry, else its peer.service, its queue, its URL (host or port);
    with none of these, the timing alone. Any of these that disagrees rules the pair out."""
    job, answered = _first(caller, MESSAGE_ID_TAGS), _first(root, MESSAGE_ID_TAGS)
    if job and answered:
        return f"by the job id both spans carry ({job}): certain" if job == answered else None
    peer = tag_text(caller.tags.get("peer.service", ""))
    if peer:
        if peer != root.service:
            return None
        return f"by {caller.service}'s peer.service tag, which names {peer}, and the timing: likely"
    destination = _first(caller, DESTINATION_TAGS)
    if destination:
        if destination != _first(root, DESTINATION_TAGS):
            return None
        return f"by the queue both spans name ({destination}) and the timing: likely"
    url = _url(caller)
    if url is not None:
        host, port, path = url
        served = _served_path(root)
        if served and path and served != path:
            return None
        if not _is_address(host) and root.service in (host, host.split(".")[0]):
            return f"by the URL {caller.service} called, whose host names {root.service}, and the timing: likely"
        if port and port == _first(root, PORT_TAGS):
            return f"by the port of the URL {caller.service} called ({port}) and the timing: likely"
        return None
    if root.kind in ("server", "consumer"):
        return (
            f"by the timing alone ({named(caller)} names no service, queue or URL): a guess, which another "
            "trace that began meanwhile could prove wrong"
        )
    return None


def pair_hops(trees: list[TraceTree]) -> dict[str, list[Hop]]:
    """Callers whose call began a trace of its own, paired one to one with the roots that answered them, over
    all these traces: pairs by a job id both carry first, then each caller (in the order they began) with the
    root that began first after it. Trace id -> the hops it is half of."""
    roots = sorted(
        ((root.start, index, root, tree.trace_id) for tree in trees for index, root in enumerate(_root_spans(tree))),
        key=lambda entry: entry[0],
    )
    starts = [entry[0] for entry in roots]
    callers = sorted(
        ((caller, tree.trace_id) for tree in trees for caller in _caller_spans(tree)), key=lambda c: c[0].start
    )
    candidates: list[tuple[SpanNode, str, list[tuple[SpanNode, str, str]]]] = []
    for caller, trace_id in callers:
        late = QUEUE_TOLERANCE_US if caller.kind == "producer" else 0
        low, high = bisect.bisect_left(starts, caller.start), bisect.bisect_right(starts, caller.end + late)
        found = []
        for _, _, root, root_trace in roots[low:high]:
            if root_trace == trace_id or root.service == caller.service:
                continue
            matched = _match(caller, root)
            if matched is not None:
                found.append((root, root_trace, matched))
        if found:
            candidates.append((caller, trace_id, found))
    taken: set[int] = set()  # the roots and callers already paired, by id()
    hops: list[Hop] = []
    for certain in (True, False):
        for caller, trace_id, found in candidates:
            if id(caller) in taken:
                continue
            for root, root_trace, matched in found:
                if id(root) not in taken and matched.endswith(": certain") == certain:
                    taken |= {id(root), id(caller)}
                    hops.append(Hop(caller, trace_id, root, root_trace, matched))
                    break
    paired: dict[str, list[Hop]] = {}
    for hop in hops:
        paired.setdefault(hop.caller_trace, []).append(hop)
        paired.setdefault(hop.root_trace, []).append(hop)
    return paired


@dataclass(frozen=True)
class Propagation:
    """What a lost hop says about how the context travels between its two tracers."""

    cause: str  # the end of the title
    carrier: str
    lesson: str
    causes: list[str]
    check: list[str]


def _propagation(caller: SpanNode, root: SpanNode) -> Propagation:
    job = caller.kind == "producer"
    what, where = ("job", "the job's body") if job else ("request", "the request's headers")
    sender, reader = tracer_of(caller), tracer_of(root)
    me, you = caller.service, root.service
    write = (
        f"in {me}: propagate.inject(carrier) inside its span, and the carrier sent in the {what}"
        if sender and sender.configurable
        else f"in {me}: tracer.inject(span.context, Format.{'TEXT_MAP' if job else 'HTTP_HEADERS'}, carrier), "
        f"and the carrier sent in the {what}"
    )
    read = (
        f"in {you}: propagate.extract(carrier) made current before its span starts"
        if reader and reader.configurable
        else f"in {you}: tracer.extract(...) and child_of= (or follows_from=) that context"
    )
    if sender and reader and sender.header != reader.header:
        lesson = "step9" if _polyglot(caller, root) else "step8"
        return Propagation(
            f"{me} ({sender.name}) writes {sender.header}; {you} ({reader.name}) reads {reader.header}: "
            "the two propagators disagree",
            f"{where}: {me} writes {sender.header}, {you} reads {reader.header}",
            lesson,
            [
                f"{me}'s tracer writes only {sender.header} and {you}'s reads only {reader.header} (each "
                "tracer's default)",
                f"{you} did not extract the context at all",
            ],
            [
                "one format both read: OpenTelemetry's Jaeger propagator reads and writes uber-trace-id beside "
                "traceparent (OTEL_PROPAGATORS=jaeger,tracecontext,baggage, as lesson 8 sets it)",
                read,
            ],
        )
    if sender and sender.configurable and (reader is None or reader.configurable):
        polyglot = _polyglot(caller, root)
        lesson = "step9" if polyglot else ("step7" if "shim" in _scope(caller) + _scope(root) else "step8")
        carrier = f"{where}, in the formats {me}'s OTEL_PROPAGATORS names (traceparent unless set)"
        agree = f"{me} and {you} name one format in their OTEL_PROPAGATORS (or the propagators set in code)" + (
            " (lesson 9's traefik.sh sets Traefik's)" if "traefik" in (me, you) else ""
        )
        if _instrumented(caller):  # it always sends the context: only the format can be wrong
            return Propagation(
                f"{you} did not read the context {me} sent (their propagators disagree)",
                carrier,
                lesson,
                [
                    f"{me} ({sender.name}) sends what its propagators write, and {you} reads other formats "
                    "(B3 against W3C's traceparent, say)",
                    f"{you} did not extract the context (no instrumentation, or its span started outside it)",
                ],
                [agree, read],
            )
        return Propagation(
            f"{you} read no trace context from the {what} ({me} did not inject one, or their propagators disagree)",
            carrier,
            lesson,
            [
                f"{me} did not inject the context into the {what} (no inject, or into a carrier it did not send)",
                f"{you} extracts with other propagators than {me} injects with (OTEL_PROPAGATORS, or one named "
                "in code)",
                f"{you} did not make the extracted context current before starting its span",
            ],
            [write, agree, read],
        )
    header = (sender or reader).header if (sender or reader) else ""
    return Propagation(
        f"the {what} carried no trace context (or {you} did not read it)",
        f"{where}, as {header}" if header else f"{where} (as uber-trace-id, traceparent or b3)",
        "step5" if job else "step4",
        [
            f"{me} did not inject the context into the {what} (no inject, or into a carrier it then did not send)",
            f"{you} did not extract it (or started its span without the extracted context as its parent)",
            "the two services use propagation formats that the other does not read",
        ],
        [write, read],
    )


def _lost(hop: Hop, here: str) -> Finding:
    caller, root = hop.caller, hop.root
    caller_here = hop.caller_trace == here
    other = hop.root_trace if caller_here else hop.caller_trace
    story = _propagation(caller, root)
    into = roughly_us(max(root.start - caller.start, 0))
    return Finding(
        kind="lost_context",
        title=f"{named(root)} started a trace of its own {into} into {named(caller)}: {story.cause}",
        detail=f"{named(caller)} is in {'this trace' if caller_here else 'trace ' + other}, {named(root)} in "
        f"{'trace ' + other if caller_here else 'this one'}: one request, two traces. The context should have "
        f"travelled in {story.carrier}. The two were paired {hop.matched}.",
        causes=story.causes,
        check=story.check,
        lesson=story.lesson,
        spans=[caller.id if caller_here else root.id],
        traces=[other],
        carrier=story.carrier,
        matched=hop.matched,
    )


# --- the tree itself ----------------------------------------------------------------------------------------------

SKIPPING = (
    "Jaeger warns 'invalid parent span IDs=...; skipping clock skew adjustment' (newer versions: 'parent span "
    "ID=... is not in the trace; ...'): with no parent to compare it with, it cannot check the span's clock"
)


def missing_parents(tree: TraceTree, twins: list[TraceTree] | None = None) -> list[Finding]:
    """One finding a missing parent, naming every span that waits for it (a parent in the request's trace of
    the other id width is not missing: `two_widths` says where it is)."""
    twins = twins or []
    orphans: dict[str, list[SpanNode]] = {}
    kinds: dict[str, str] = {}
    for node in tree.roots:
        reference = node.missing_reference
        if reference is not None and not any(reference["spanID"] in twin.by_id for twin in twins):
            orphans.setdefault(reference["spanID"], []).append(node)
            kinds.setdefault(reference["spanID"], reference["refType"])
    findings = []
    for parent, nodes in orphans.items():
        names = _counted(named(node) for node in nodes)
        waiting = f"{names} names" if len(nodes) == 1 else f"{len(nodes)} spans ({names}) name"
        follows = kinds[parent] != CHILD_OF
        how = "a follows_from reference to " if follows else ""
        findings.append(
            Finding(
                kind="missing_parent",
                title=f"{waiting} {how}a parent span {parent} that never arrived",
                detail=f"{names} {'is a child' if len(nodes) == 1 else 'are children'} of span {parent}"
                f"{' (a follows_from reference: the parent did not wait for it)' if follows else ''}, which this "
                f"trace does not hold: each shows as a root of its own. {SKIPPING}.",
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


def cycles(tree: TraceTree) -> list[Finding]:
    """Spans that are their own parent, or each other's ancestors: bad ids from a tracer or a hand-made span."""
    findings = []
    for node in tree.spans:
        if not node.cycle:
            continue
        if node.cycle == (node.id,):
            title = f"{named(node)} names itself (span {node.id}) as its parent"
        else:
            loop = " -> ".join([*node.cycle, node.id])
            title = f"{len(node.cycle)} spans are each other's parents: {loop}"
        findings.append(
            Finding(
                kind="parent_cycle",
                title=title,
                detail=f"A parent begins before its children, so no span can be its own ancestor. {named(node)} "
                "is shown as a root here, and Jaeger's UI cannot draw this trace as a tree.",
                causes=[
                    "span ids made by hand (a test, a replay) or reused by a tracer that does not make them random"
                ],
                check=["where these spans' ids and parent ids are set"],
                lesson="step2",
                spans=[node.id],
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


def _host(node: SpanNode) -> str:
    said = _process_tags(node)
    return next((said[key] for key in HOST_TAGS if said.get(key)), "")


def _skew(child: SpanNode, parent: SpanNode) -> tuple[str, int] | None:
    """How the child falls outside its parent, as Jaeger's clock-skew adjuster judges it, and the shift it
    would make: a child longer than its parent (async, or the parent timed out) only if it starts before it;
    a shorter one if it starts before it or ends after it (beyond the tolerances). Not on one host (one clock),
    which Jaeger does not adjust either."""
    here, there = _host(child), _host(parent)
    if here and here == there:
        return None
    late_tolerance = SKEW_TOLERANCE_US if here and there else LATE_TOLERANCE_US
    early, late = parent.start - child.start, child.end - parent.end
    if child.duration > parent.duration:
        return (f"starts {format_duration_us(early)} before", early) if early > SKEW_TOLERANCE_US else None
    if early <= SKEW_TOLERANCE_US and late <= late_tolerance:
        return None
    shift = parent.start + (parent.duration - child.duration) // 2 - child.start  # latency split both ways
    if early > SKEW_TOLERANCE_US:
        return f"starts {format_duration_us(early)} before", shift
    return f"ends {format_duration_us(late)} after", shift


def clock_skew(tree: TraceTree) -> list[Finding]:
    """A child outside its parent's time, across processes (one process has one clock). Not a job's consumer:
    it may run after its producer ended (the queue), which Jaeger's adjuster does not know."""
    findings = []
    unadjusted = any(node.missing_parent for node in tree.roots)
    for node in tree.spans:
        parent = node.parent
        if parent is None or node.reference != CHILD_OF or parent.process == node.process:
            continue
        if parent.kind == "producer" or node.kind == "consumer":
            continue
        skew = _skew(node, parent)
        if skew is None:
            continue
        how, shift = skew
        direction = "later" if shift > 0 else "earlier"
        findings.append(
            Finding(
                kind="clock_skew",
                title=f"{named(node)} {how} its parent {named(parent)}",
                detail=f"A call's server runs inside its client: {node.service}'s clock and {parent.service}'s "
                f"disagree. Jaeger's clock-skew adjuster moves {node.service}'s spans here "
                f"{format_duration_us(abs(shift))} {direction} to fit (Jaeger UI notes 'This span's timestamps "
                "were adjusted by ...'); this store shows them as recorded."
                + (f" Spans whose parent never arrived cannot be adjusted at all: {SKIPPING}." if unadjusted else ""),
                causes=["the machines' clocks differ (no NTP, a container's clock, a laptop after sleep)"],
                check=["`date` on both machines; NTP", "that both spans' times come from the same clock kind"],
                lesson="step4",
                spans=[node.id, parent.id],
            )
        )
    return findings


def two_widths(tree: TraceTree, twins: list[TraceTree]) -> list[Finding]:
    if not twins:
        return []
    held = {span_id: twin for twin in twins for span_id in twin.by_id}
    joined = [node for node in tree.roots if node.missing_parent in held]
    where = "; ".join(
        f"{named(node)}'s parent {node.missing_parent} is in trace {held[node.missing_parent].trace_id}"  # type: ignore[index]
        for node in joined
    )
    return [
        Finding(
            kind="two_widths",
            title=f"one request, two trace ids: {tree.trace_id} and {twins[0].trace_id} share their low 64 bits",
            detail="One service wrote a 64-bit trace id, another a 128-bit one with other high bits: the spans "
            "of one request are split between two traces." + (f" {where}." if where else ""),
            causes=["a jaeger-client (64-bit ids) and an OpenTelemetry service (128-bit) that each began the trace"],
            check=["jaeger-client's generate_128bit_trace_id, or the propagator that reads the other's header"],
            lesson="step7",
            spans=[node.id for node in (joined or tree.roots)],
            traces=[twin.trace_id for twin in twins],
        )
    ]


# --- what the spans say ---------------------------------------------------------------------------------------------


def errors_not_marked(tree: TraceTree) -> list[Finding]:
    findings = []
    for node in tree.spans:
        status = _first(node, STATUS_TAGS)
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


def _opentelemetry(node: SpanNode) -> bool:
    tracer = tracer_of(node)
    return tracer is not None and tracer.configurable


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


SECRET_WORDS = frozenset(
    {"token", "password", "passwd", "passphrase", "secret", "authorization", "apikey", "cookie", "credential"}
    | {"credentials", "jwt"}
)
SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"), ("set", "cookie")})
SECRET_VALUE = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|AKIA[0-9A-Z]{16})"
    r"|\b[Bb]earer\s+\S{8,}|\bBasic\s+[A-Za-z0-9+/]{8,}={0,2}|\beyJ[\w-]{8,}\.[\w-]{8,}\."
)
NOT_A_VALUE = frozenset({"", "-", "none", "null", "false", "true", "0", "redacted", "[redacted]", "***"})


@functools.lru_cache(maxsize=4096)
def secret_key(key: str) -> bool:
    """Whether a key names a credential: its last dotted segment, split into words (`auth-token`, `apiKey`),
    ends in a word such as token, password, secret, authorization, cookie, credentials, api key or private key.
    So `http.request.header.authorization` and `access_token` do, `gen_ai.usage.input_tokens`, `tokenizer`,
    `token.count` and `password_reset` do not."""
    last = key.rsplit(".", 1)[-1]
    words = re.findall(r"[a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", last).lower())
    return bool(words) and (words[-1] in SECRET_WORDS or tuple(words[-2:]) in SECRET_PAIRS)


def _credential(key: str, value: str) -> str:
    """Why a field looks like a credential ("its name", "its value's shape"), or ""."""
    if secret_key(key) and value.strip().lower() not in NOT_A_VALUE and set(value.strip()) != {"*"}:
        return "its name"
    return "its value's shape" if SECRET_VALUE.search(value) else ""


def secrets(tree: TraceTree) -> list[Finding]:
    """One finding a field that looks like a credential (by where it is and its name), naming every span: tags,
    log fields, baggage, and the tags of each span's process (OpenTelemetry's resource). Never its value."""
    found: dict[tuple[str, str, str, str, bool], list[SpanNode]] = {}
    processes: set[int] = set()
    for node in tree.spans:
        otel = _opentelemetry(node)
        for where, key, value in _fields(node):
            why = _credential(key, value)
            if why:
                where = "attribute" if where == "tag" and otel else where  # OpenTelemetry's word
                found.setdefault((named(node), where, key, why, otel), []).append(node)
        if id(node.process) not in processes:
            processes.add(id(node.process))
            for entry in node.process.get("tags") or []:
                why = _credential(entry["key"], tag_text(entry["value"]))
                if why:  # said once, at the process's first span
                    where = "resource attribute" if otel else "process tag"
                    found.setdefault((f"{node.service}'s process", where, entry["key"], why, otel), [node])
    findings = []
    for (name, where, key, why, otel), nodes in found.items():
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
                lesson="step6" if where == "baggage" else ("step8" if otel else "step3"),
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


# --- operation names with values in them ------------------------------------------------------------------------

TEMPLATE_SEGMENT = re.compile(r"^(<[^>]+>|:[\w-]+|\{[^}]+\}|\*)$")
VERB = re.compile(r"^[A-Z]{3,7}$")
VALUE_SEGMENT = re.compile(
    r"^(\d+|(?=[0-9a-f]*\d)[0-9a-f]{8,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I
)
NameKey = tuple[str, str, str, tuple[str, ...]]  # (service, rule, verb, the name with its varying place as "*")
NameIndex = dict[NameKey, set[str]]


@functools.lru_cache(maxsize=65536)
def name_keys(operation: str) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """The shapes a name shares with others that differ from it in values only: `GET /contributors/o1/r1`
    -> its owner/repo pair as one varying place, each segment as one; `get_user_1` -> its digits. A route
    (`<owner>`, `:owner`, `{owner}`) has none, nor has a name of one segment (`/health`, `GET /`)."""
    verb, space, rest = operation.partition(" ")
    if space and VERB.match(verb) and rest.startswith("/"):
        segments, path = rest.partition("?")[0].strip("/").split("/"), True
    elif operation.startswith("/"):
        verb, segments, path = "", operation.partition("?")[0].strip("/").split("/"), True
    else:
        verb, segments, path = "", re.split(r"[_\-.:]", operation), False
    if len(segments) < 2 or any(TEMPLATE_SEGMENT.match(segment) for segment in segments):
        return ()
    keys = []
    values = tuple("#" if VALUE_SEGMENT.match(segment) else segment for segment in segments)
    if "#" in values:
        keys.append(("value", verb, values))
    if path:  # a place that varies while the rest stays: one segment, or a pair (owner/repo) under a prefix
        for at in range(len(segments)):
            keys.append(("place", verb, (*segments[:at], "*", *segments[at + 1 :])))
        for at in range(len(segments) - 1 if len(segments) >= 3 else 0):
            keys.append(("place", verb, (*segments[:at], "*", "*", *segments[at + 2 :])))
    return tuple(keys)


def name_index(trees: Iterable[TraceTree]) -> NameIndex:
    """Each service's operation names, by the shapes they share (`name_keys`)."""
    names: NameIndex = {}
    seen: set[tuple[str, str]] = set()
    for one in trees:
        for node in one.spans:
            pair = (node.service, node.operation)
            if pair in seen:
                continue
            seen.add(pair)
            for rule, verb, shape in name_keys(node.operation):
                names.setdefault((node.service, rule, verb, shape), set()).add(node.operation)
    return names


def _similar(service: str, operation: str, names: NameIndex) -> set[str]:
    """The names of `service` that differ from `operation` only in values, with it; empty if none do enough."""
    for rule, verb, shape in name_keys(operation):
        alike = names.get((service, rule, verb, shape), set())
        if len(alike) >= (VALUE_NAMES if rule == "value" else SIMILAR_NAMES):
            return alike
    return set()


def cardinality(tree: TraceTree, names: NameIndex) -> list[Finding]:
    """Operation names that embed values (ids, names): seen across the traces of one service."""
    findings = []
    said: set[str] = set()
    for node in tree.spans:
        if node.service in said:
            continue
        similar = _similar(node.service, node.operation, names)
        if not similar:
            continue
        said.add(node.service)  # once per trace and service is enough
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
    return findings


# --- across the recent traces -------------------------------------------------------------------------------------


@dataclass
class Group:
    kind: str
    count: int  # requests: a hop's two traces, or a request's two trace-id widths, count once
    title: str  # "12 requests lost the trace context between gateway and worker"
    lesson: str
    traces: list[str]


# (one, many): what the traces of a group have in common, as a sentence's end
SAYS = {
    "missing_parent": ("trace has a span whose parent never arrived", "traces have a span whose parent never arrived"),
    "parent_cycle": ("trace has spans that are their own ancestors", "traces have spans that are their own ancestors"),
    "several_roots": ("trace has several roots", "traces have several roots"),
    "clock_skew": (
        "trace has a child outside its parent's time (clock skew)",
        "traces have a child outside its parent's time (clock skew)",
    ),
    "two_widths": (
        "request was split between a 64-bit and a 128-bit trace id",
        "requests were split between a 64-bit and a 128-bit trace id",
    ),
    "error_not_marked": (
        "trace has a 5xx span not marked as an error",
        "traces have a 5xx span not marked as an error",
    ),
    "secret": (
        "trace records something that looks like a credential",
        "traces record something that looks like a credential",
    ),
    "oversized_baggage": ("trace carries heavy baggage", "traces carry heavy baggage"),
    "baggage_lost": (
        "trace lost a baggage item on the way downstream",
        "traces lost a baggage item on the way downstream",
    ),
    "cardinality": (
        "trace names spans with values (operation names that embed ids)",
        "traces name spans with values (operation names that embed ids)",
    ),
}


@dataclass
class Recent:
    """What `diagnose_recent` found: the groups, most first, and the time the traces began in."""

    groups: list[Group]
    traces: int
    oldest_us: int  # when the oldest of them began (0: none)

    def since(self, now_us: int | None = None) -> str:
        """`in the last 5 minutes`: from the oldest trace's start to now."""
        if not self.traces:
            return ""
        now = int(time.time() * 1_000_000) if now_us is None else now_us
        return f"in the last {in_words(max(now - self.oldest_us, 0))}"


def in_words(us: int) -> str:
    """A span of time as a sentence says it, rounded up: 40 seconds, 5 minutes, 2 hours, 3 days (an hour is
    said in minutes up to 2 hours, a day in hours up to 2 days)."""
    seconds = -(-us // 1_000_000)
    for unit, size, at_least in (("day", 86_400, 172_800), ("hour", 3_600, 7_200), ("minute", 60, 60)):
        if seconds >= at_least:
            count = -(-seconds // size)
            return f"{count} {unit}{'s' * (count != 1)}"
    return f"{max(seconds, 1)} second{'s' * (seconds > 1)}"


def diagnose_recent(traces: list[Json]) -> Recent:
    """Findings grouped across these traces (the hops between them paired over all of them), most first. A
    group counts requests: a hop's two traces are one request, so are a request's two trace-id widths."""
    trees = [TraceTree(trace) for trace in traces]
    around = Around(trees)
    groups: dict[tuple[str, str], tuple[Group, set]] = {}

    def count(kind: str, about: str, lesson: str, unit: object, trace_ids: Iterable[str]) -> None:
        group, units = groups.setdefault((kind, about), (Group(kind, 0, about, lesson, []), set()))
        units.add(unit)
        group.traces += [trace_id for trace_id in trace_ids if trace_id not in group.traces]

    for tree in trees:
        for finding in findings_for(tree, around):
            if finding.kind == "two_widths":  # one request: its two traces count once
                count(finding.kind, "", finding.lesson, frozenset([tree.trace_id, *finding.traces]), [tree.trace_id])
            elif finding.kind != "lost_context":  # (the hops, below)
                count(finding.kind, "", finding.lesson, tree.trace_id, [tree.trace_id])
    hops = {id(hop): hop for paired in around.hops.values() for hop in paired}
    for hop in sorted(hops.values(), key=lambda hop: hop.caller.start):
        about = f"lost the trace context between {hop.caller.service} and {hop.root.service}"
        lesson = _propagation(hop.caller, hop.root).lesson
        count("lost_context", about, lesson, id(hop), [hop.caller_trace, hop.root_trace])
    found = []
    for (kind, about), (group, units) in groups.items():
        group.count = len(units)
        many = group.count != 1
        if kind in SAYS:
            group.title = f"{group.count} {SAYS[kind][many]}"
        else:  # lost_context: `about` names the two services
            group.title = f"{group.count} request{'s' * many} {about} ({len(group.traces)} traces)"
        found.append(group)
    oldest = min((tree.start for tree in trees), default=0)
    return Recent(sorted(found, key=lambda g: g.count, reverse=True), len(trees), oldest)
