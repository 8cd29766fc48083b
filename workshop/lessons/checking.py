"""A learner's trace against the lesson's tasks (workshop.lessons.expected): for each task done or not, and
for each one not done what the trace shows against what it should, and where to look.

It reads the model only, so it works on any trace (the local store's, a real Jaeger's). It tolerates what a
correct solution may differ in: siblings in another order, spans and tags the learner added, ids and timings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from workshop.lessons.expected import ROOT, TASKS, TREES, Absent, Expect, Kind, Span, Task, Tree
from workshop.lessons.mistakes import MISTAKES
from workshop.tracestore.diagnosis import Finding, named, possessive
from workshop.tracestore.model import Json, SpanNode, TraceTree, tag_text


@dataclass
class Result:
    task: Task
    problems: list[str] = field(default_factory=list)  # empty: done
    mistakes: list[str] = field(default_factory=list)  # the catalogue's mistakes whose mark the trace bears

    @property
    def done(self) -> bool:
        return not self.problems

    def as_json(self) -> Json:
        return {
            "task": self.task.number,
            "title": self.task.title,
            "done": self.done,
            "problems": self.problems,
            "mistakes": self.mistakes,
        }


def says(span: Span) -> str:
    return possessive(*span)


def check(
    stage: str,
    traces: Mapping[str, Json | None],
    others: Mapping[str, list[Json]] | None = None,
    findings: Mapping[str, list[Finding]] | None = None,
) -> list[Result]:
    """Each task of `stage` against the trace of its request (`traces`: request name -> trace, None when none
    was found); `others`: the traces around each (a span that lost its context is in one of them); `findings`:
    the trace doctor's, for each request's trace."""
    known = _known_spans(stage)
    results = []
    traceless: dict[str, int] = {}  # request -> the task that said its trace never came
    for task in TASKS[stage]:
        said = (findings or {}).get(task.request, [])
        shown = [
            name for name in task.mistakes if name in MISTAKES and any(f.kind == MISTAKES[name].finding for f in said)
        ]
        problems: list[str] = []
        trace = traces.get(task.request)
        if trace is None:
            if task.request in traceless:
                problems.append(f"no trace (see task {traceless[task.request]})")
            elif any(isinstance(wanted, Expect) for wanted in task.checks):  # (with no trace, no finding either)
                problems.append("no trace of the request reached the store: do its services trace, send their spans?")
                traceless[task.request] = task.number
            results.append(Result(task, problems, shown))
            continue
        tree = TraceTree(trace)
        around = [
            TraceTree(other) for other in (others or {}).get(task.request, []) if other["traceID"] != tree.trace_id
        ]
        for wanted in task.checks:
            if isinstance(wanted, Absent):
                problems += [f"the trace doctor: {finding.title}" for finding in said if finding.kind == wanted.finding]
            else:
                problems += _problems(wanted, tree, around, known)
        results.append(Result(task, problems, shown))
    return results


def _known_spans(stage: str) -> set[Span]:
    """The spans the lesson's trace is made of: any other span is the learner's own, and may stand between a
    span and its parent."""
    spans: set[Span] = set()

    def walk(tree: Tree) -> None:
        service, operation, children = tree
        spans.add((service, operation))
        for child in children:
            walk(child)

    if stage in TREES:
        walk(TREES[stage])
    for task in TASKS[stage]:
        spans.update(wanted.span for wanted in task.checks if isinstance(wanted, Expect))
    return spans


def _problems(wanted: Expect, tree: TraceTree, around: list[TraceTree], known: set[Span]) -> list[str]:
    candidates = [node for node in tree.spans if (node.service, node.operation) == wanted.span]
    if not candidates and wanted.anywhere:  # in a trace of its own is enough, here
        candidates = [node for other in around for node in other.spans if (node.service, node.operation) == wanted.span]
    if not candidates:
        return [_missing(wanted, tree, around, known)]
    found = [_differences(wanted, node, tree, known) for node in candidates]
    best = min(found, key=len)
    return best  # empty if any candidate has it all


def _missing(wanted: Expect, tree: TraceTree, around: list[TraceTree], known: set[Span]) -> str:
    elsewhere = next(
        (other for other in around if any((n.service, n.operation) == wanted.span for n in other.spans)), None
    )
    where = ""
    if wanted.parent not in ("unchecked", ROOT):
        where = f": it belongs under {says(wanted.parent)}"  # type: ignore[arg-type]
    if elsewhere is not None:
        return (
            f"{says(wanted.span)} is in a trace of its own ({elsewhere.trace_id}), not in this one{where}: "
            "the trace context did not reach it"
        )
    service = wanted.span[0]
    its = {node.operation for node in tree.spans if node.service == service}
    strangers = sorted(its - {operation for _, operation in known})
    if not its:
        why = f"{service} has no span in this trace"
    elif strangers:  # a span of that service that no task names: a typo in its name?
        why = f"{service} has {', '.join(repr(name) for name in strangers[:3])}: misnamed?"
    else:
        why = "a span is sent once it is finished"
    return f"no span {says(wanted.span)} in the trace{where} ({why})"


def _differences(wanted: Expect, node: SpanNode, tree: TraceTree, known: set[Span]) -> list[str]:
    out = []
    name = named(node)
    if wanted.parent != "unchecked":
        actual = (node.parent.service, node.parent.operation) if node.parent is not None else None
        if actual != wanted.parent and not _under(node, wanted.parent, known):
            should = "begin the trace" if wanted.parent is ROOT else f"be under {says(wanted.parent)}"  # type: ignore
            if node.parent is None and node.missing_parent:
                out.append(f"the parent span of {name} never arrived (was it finished?); it should {should}")
            else:
                now = "begins the trace" if actual is None else f"is under {says(actual)}"
                out.append(f"{name} {now}; it should {should}")
    if wanted.reference is not None and node.parent is not None and node.reference != wanted.reference:
        out.append(f"{name} refers to its parent as {node.reference}; it should be {wanted.reference}")
    has = f"span.kind {node.kind}" if node.kind else "no span.kind"
    if wanted.kind is not None and node.kind != wanted.kind:
        out.append(f"{name} has {has}; it should be {wanted.kind}")
    tags = node.tags
    for key, value in wanted.tags.items():
        if key == "span.kind" and wanted.kind is None and node.kind != value:
            out.append(f"{name} has {has}; it should be {value}")
        elif key == "span.kind":
            continue
        elif key not in tags:
            out.append(f"{name} has no tag {key} (it should be {_shown(value)})")
        elif not _matches(tags[key], value):
            out.append(f"the tag {key} of {name} is {tag_text(tags[key])!r}; it should be {_shown(value)}")
    events = {tag_text(f["value"]) for log in node.span["logs"] for f in log["fields"] if f["key"] == "event"}
    out += [f"{name} has no log event {event!r}" for event in wanted.logs if event not in events]
    if wanted.error is not None and node.error != wanted.error:
        marked = [named(other) for other in tree.spans if other.error and other is not node] if wanted.error else []
        where = f"; the mark is on {', '.join(marked)}" if marked else ""
        out.append(f"{name} is {'not ' if wanted.error else ''}marked as an error (error=true){where}")
    carried = _baggage(node)
    for key, value in wanted.baggage.items():
        if carried.get(key) == value:
            continue
        below = next((n for n in node.descendants() if _baggage(n).get(key) == value), None)
        if below is not None:
            out.append(
                f"{name}: the baggage item {key!r} is set on {named(below)}, a span below it; set it on "
                f"{name}, so that everything after it carries it"
            )
        else:
            now = f"is {carried[key]!r}" if key in carried else "is not set"
            out.append(f"{name}: the baggage item {key!r} {now}; it should be {value!r}")
    return out


def _under(node: SpanNode, parent: Span | None, known: set[Span]) -> bool:
    """Is `parent` an ancestor of `node` with only spans of the learner's own between them?"""
    above = node.parent
    while above is not None and (above.service, above.operation) not in known:
        above = above.parent
    return above is not None and (above.service, above.operation) == parent


def _baggage(node: SpanNode) -> dict[str, str]:
    """The baggage items set on the span (jaeger-client logs each one as an event `baggage`)."""
    items = {}
    for log in node.span["logs"]:
        fields = {f["key"]: tag_text(f["value"]) for f in log["fields"]}
        if fields.get("event") == "baggage" and "key" in fields:
            items[fields["key"]] = fields.get("value", "")
    return items


def _matches(actual: object, wanted: object) -> bool:
    if isinstance(wanted, Kind):
        return wanted.accepts(actual)
    return tag_text(actual) == tag_text(wanted)


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, Kind) else repr(tag_text(value))


def requests_of(stage: str) -> list[str]:
    """The requests a check of `stage` sends (workshop.lessons.expected.REQUESTS), the demo's first."""
    return sorted({task.request for task in TASKS[stage]}, key=lambda name: name != "demo")
