"""The span trees each traced stage must produce for its demo request, as workshop/lessons/expected.py writes
them (the exercises' checker reads the same), by lesson folder; and helpers to compare a trace with them.

The in-memory tests and the end-to-end tests assert the same trees: (service, operation, [children in
start order]).
"""

from __future__ import annotations

from workshop.lessons.expected import TREES, Kind, services
from workshop.lessons.stages import find_stage
from workshop.tracestore.model import Json, SpanNode, TraceTree

EXPECTED_TREES = {find_stage(stage).folder.name: tree for stage, tree in TREES.items()}  # by lesson folder


SERVICES = {stage: services(tree) for stage, tree in EXPECTED_TREES.items()}


def json_tree(trace: Json) -> tuple:
    """A Jaeger JSON trace as (service, operation, [children]), for comparison with the trees above."""
    (root,) = TraceTree(trace).roots

    def tree(node: SpanNode) -> tuple:
        return (node.service, node.span["operationName"], [tree(child) for child in node.children])

    return tree(root)


def json_tags(span: Json) -> dict:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def canonical(tree: tuple) -> tuple:
    """The tree with each span's children sorted: for spans whose order is a race (lesson 8's worker can
    start before the gateway's BRPOP span does)."""
    service, operation, children = tree
    return (service, operation, sorted(canonical(child) for child in children))


def exact(table: dict, values: dict) -> dict:
    """A lesson's tag table (workshop/lessons/expected.py, as make check-stepN reads it) with `values` for the
    tags it gives only as a kind of value (a URL, a number): what one span must have, exactly. Every such
    value is given, and each fits its kind."""
    kinds = {key for key, value in table.items() if isinstance(value, Kind)}
    assert set(values) == kinds, (set(values), kinds)
    assert all(table[key].accepts(value) for key, value in values.items())
    return {**table, **values}
