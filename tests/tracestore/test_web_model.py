"""What the pages compute, on hand-built traces: the comparison of two lessons' traces."""

from __future__ import annotations

from workshop.tracestore import model
from workshop.tracestore.web.model import compare, duration_bars, summary, trace_view


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


def test_a_bar_s_duration_is_written_where_it_does_not_cover_a_name():
    view = trace_view(
        model.assemble_trace(
            "t",
            [
                (model.span("t", "root", "r", [], 0, 1000, [], []), model.process("s", [])),
                (model.span("t", "late", "l", [], 500, 480, [], []), model.process("s", [])),
                (model.span("t", "early", "e", [], 0, 100, [], []), model.process("s", [])),
            ],
        )
    )
    places = {row.id: (row.duration_place, round(row.duration_at)) for row in view.rows}
    assert places == {"root": ("inside", 100), "late": ("before", 50), "early": ("after", 10)}


def test_the_axis_has_round_steps():
    view = trace_view(trace("t", [("a", "s", "op", None)]))
    view.duration_us = 2_050_000
    assert [label for _, label in view.ticks()] == ["0µs", "1s", "2s"]
    view.duration_us = 730
    assert [label for _, label in view.ticks()] == ["0µs", "200µs", "400µs", "600µs"]


def test_a_search_result_says_what_was_asked_and_a_few_traces_are_thin_bars():
    repo = [model.tag("github.repo", "string", "pallets/flask")]
    url = [model.tag("http.url", "string", "http://127.0.0.1:8480/contributors/psf/requests?top=3")]
    asked_repo = model.assemble_trace("a", [(model.span("a", "1", "op", [], 0, 5, repo, []), model.process("s", []))])
    asked_url = model.assemble_trace("b", [(model.span("b", "1", "op", [], 9, 5, url, []), model.process("s", []))])
    found = [summary(asked_repo), summary(asked_url)]
    assert [s.request for s in found] == ["pallets/flask", "/contributors/psf/requests"]
    assert all(bar.width <= 2.5 for bar in duration_bars(found))
