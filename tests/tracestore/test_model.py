"""The trace model's TraceTree on hand-built traces: the shapes the lessons make and the ones they never do."""

from __future__ import annotations

from workshop.tracestore import model
from workshop.tracestore.model import CHILD_OF, FOLLOWS_FROM, TraceTree, assemble_trace

TRACE = "00000000000000000000000000000abc"


def span(span_id: str, start: int, duration: int = 10, parent: str | None = None, **options) -> model.Json:
    refs = (
        [model.reference(options.get("ref_type", CHILD_OF), options.get("trace_id", TRACE), parent)] if parent else []
    )
    refs += [model.reference(FOLLOWS_FROM, linked_trace, linked) for linked_trace, linked in options.get("links", [])]
    tags = [model.tag("error", "bool", True)] if options.get("error") else []
    trace_id = options.get("trace_id", TRACE)
    return model.span(trace_id, span_id, options.get("name", span_id), refs, start, duration, tags, [])


def tree(*spans: model.Json, service: str = "svc") -> TraceTree:
    return TraceTree(assemble_trace(TRACE, [(s, model.process(service, [])) for s in spans]))


def shape(found: TraceTree) -> list[tuple[int, str]]:
    return [(node.depth, node.id) for node in found.walk()]


def test_children_are_in_start_order_whatever_order_the_spans_came_in():
    found = TraceTree(
        {
            "traceID": TRACE,
            "spans": [
                {**span("c", 30, parent="a"), "processID": "p1"},
                {**span("b", 20, parent="a"), "processID": "p1"},
                {**span("a", 0, 100), "processID": "p1"},
            ],
            "processes": {"p1": model.process("gateway", [])},
        }
    )
    assert shape(found) == [(0, "a"), (1, "b"), (1, "c")]
    assert found.root.service == "gateway" and found.depth == 2
    assert (found.start, found.end, found.duration) == (0, 100, 100)


def test_several_roots_and_a_span_whose_parent_never_arrived():
    found = tree(span("a", 0), span("b", 5, parent="a"), span("x", 50, parent="missing"), span("y", 60))
    assert [root.id for root in found.roots] == ["a", "x", "y"]
    assert [node.id for node in found.orphans] == ["x"]
    assert found.by_id["x"].missing_parent == "missing" and found.by_id["y"].missing_parent is None


def test_follows_from_is_a_parent_and_a_link_elsewhere_is_not():
    found = tree(
        span("a", 0, 100),
        span("job", 50, parent="a", ref_type=FOLLOWS_FROM),
        span("other", 200, links=[("ffff", "0000000000000001")]),
    )
    job = found.by_id["job"]
    assert job.parent is found.by_id["a"] and job.reference == FOLLOWS_FROM and job.follows_from
    assert job.links == []
    other = found.by_id["other"]
    assert other.parent is None and other.links == [model.reference(FOLLOWS_FROM, "ffff", "0000000000000001")]
    assert other.follows_from  # drawn as not waited for, though its cause is in another trace


def test_a_64_bit_and_a_128_bit_id_of_one_trace_still_join():
    short = "0000000000000abc"
    found = tree(span("a", 0, 100), span("b", 10, parent="a", trace_id=short))
    assert shape(found) == [(0, "a"), (1, "b")]
    assert model.low_half(TRACE) == model.low_half(short) == "0000000000000abc"


def test_a_child_that_starts_before_its_parent_stays_its_child():
    found = tree(span("a", 100, 50), span("b", 90, 20, parent="a"))
    assert shape(found) == [(0, "a"), (1, "b")]
    assert found.start == 90 and found.end == 150


def test_a_cycle_of_references_is_cut_and_every_span_shown_once():
    found = tree(span("a", 0, parent="b"), span("b", 10, parent="a"), span("self", 20, parent="self"))
    assert sorted(node.id for node in found.walk()) == ["a", "b", "self"]
    assert [root.id for root in found.roots] == ["a", "self"]


def test_errors_services_and_a_deep_trace_without_recursion():
    chain = [span("0", 0, 1_000_000)] + [span(str(n), n, 1, parent=str(n - 1), error=n % 2) for n in range(1, 5000)]
    found = tree(*chain)
    assert found.depth == 5000 and len(list(found.walk())) == 5000
    assert len(found.errors) == 2500 and found.services == ["svc"]
    root, deepest = found.by_id["0"], found.by_id["4999"]
    assert [node.id for node in deepest.ancestors()][:2] == ["4998", "4997"] and len(list(deepest.ancestors())) == 4999
    assert len(list(root.descendants())) == 4999 and list(deepest.descendants()) == []


def test_unknown_process_and_empty_trace():
    found = TraceTree({"traceID": TRACE, "spans": [{**span("a", 5), "processID": "p9"}], "processes": {}})
    assert found.root.service == "?"
    empty = TraceTree({"traceID": TRACE, "spans": [], "processes": {}})
    assert empty.root is None and empty.duration == 0 and empty.depth == 0


def test_constructors_keep_the_model_s_key_order_and_json_safe_values():
    keys = "traceID spanID flags operationName references startTime duration tags logs processID warnings"
    assert list(model.span("t", "s", "op", [], 1, 2, [], [], flags=1)) == keys.split()
    assert "flags" not in model.span("t", "s", "op", [], 1, 2, [], [])
    assert model.float_tag("x", float("nan")) == {"key": "x", "type": "string", "value": "NaN"}
    assert model.tag("x", "float64", float("-inf"))["value"] == "-Infinity"
    assert model.int_tag("big", 2**60)["value"] == str(2**60)
    assert model.tag_text(True) == "true" and model.tag_text(3) == "3"
