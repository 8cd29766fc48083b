"""What the pages compute, on hand-built traces: the comparison of two lessons' traces."""

from __future__ import annotations

from workshop.tracestore import model
from workshop.tracestore.web.model import compare, trace_view


def trace(trace_id: str, spans: list[tuple[str, str, str, str | None]]) -> model.Json:
    """(span id, service, operation, parent id) each, started in this order."""
    records = [
        (
            model.span(
                trace_id, sid, op, [model.reference("CHILD_OF", trace_id, parent)] if parent else [], n, 1, [], []
            ),
            model.process(service, []),
        )
        for n, (sid, service, op, parent) in enumerate(spans)
    ]
    return model.assemble_trace(trace_id, records)


LESSON_6 = [
    ("a1", "gateway", "contributors", None),
    ("a2", "gateway", "call_github_proxy", "a1"),
    ("a3", "github-proxy", "stats", "a2"),
    ("a4", "github-proxy", "get_repo_contributors", "a3"),
    ("a5", "github-proxy", "github_request", "a4"),
    ("a6", "github-proxy", "github_request", "a4"),
    ("a7", "gateway", "send_clean_job", "a1"),
    ("a8", "worker", "handle_clean_job", "a7"),
]
LESSON_8 = [  # the instrumentations rename the entry span and add the HTTP client and server spans
    ("b1", "gateway", "GET /contributors/<owner>/<repo>", None),
    ("b2", "gateway", "call_github_proxy", "b1"),
    ("b3", "gateway", "GET", "b2"),
    ("b4", "github-proxy", "GET /stats/<owner>/<repo>", "b3"),
    ("b5", "github-proxy", "get_repo_contributors", "b4"),
    ("b6", "github-proxy", "github_request", "b5"),
    ("b7", "github-proxy", "GET", "b6"),
    ("b8", "github-proxy", "github_request", "b5"),
    ("b9", "github-proxy", "GET", "b8"),
    ("ba", "gateway", "send_clean_job", "b1"),
    ("bb", "worker", "handle_clean_job", "ba"),
]


def test_the_same_work_in_two_lessons_pairs_up_though_the_root_was_renamed():
    rows = compare(trace_view(trace("a", LESSON_6)), trace_view(trace("b", LESSON_8)))
    paired = [(row.a.id, row.b.id) for row in rows if row.a and row.b]
    assert paired == [("a1", "b1"), ("a2", "b2"), ("a4", "b5"), ("a5", "b6"), ("a6", "b8"), ("a7", "ba"), ("a8", "bb")]
    assert rows[0].label == "contributors / GET /contributors/<owner>/<repo>"
    assert [row.a.id for row in rows if row.b is None] == ["a3"]  # lesson 6's own server span, named `stats`
    assert [row.b.id for row in rows if row.a is None] == ["b3", "b4", "b7", "b9"]  # what the instrumentations add
    assert [row.change for row in rows if row.b is None] == ["only in A"]


def test_roots_of_different_services_do_not_pair():
    edge = [("e1", "traefik", "entrypoint", None), ("e2", "gateway", "contributors", "e1")]
    rows = compare(trace_view(trace("a", LESSON_6[:1])), trace_view(trace("e", edge)))
    assert [(row.a and row.a.id, row.b and row.b.id) for row in rows] == [("a1", "e2"), (None, "e1")]
