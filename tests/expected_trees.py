"""The span trees each traced stage must produce for its demo request (first call for a repo: two 202s).

The in-memory tests and the end-to-end tests assert the same trees: (operation, [children in start order]).
"""

from __future__ import annotations

from workshop.jaeger_model import Json
from workshop.waterfall import Node, span_tree

CONTRIBUTORS_TREE = (
    "contributors",
    [
        ("get_repo_contributors", [("github_request", []), ("github_request", []), ("github_request", [])]),
        ("clean_github_data", []),
    ],
)
EXPECTED_TREES = {"step2_spans": CONTRIBUTORS_TREE, "step3_tags_logs": CONTRIBUTORS_TREE}
SERVICES = {"step2_spans": {"contributors"}, "step3_tags_logs": {"contributors"}}


def json_tree(trace: Json) -> tuple:
    """A Jaeger JSON trace as (operation, [children]), for comparison with the trees above."""
    (root,) = span_tree(trace)

    def tree(node: Node) -> tuple:
        return (node.span["operationName"], [tree(child) for child in node.children])

    return tree(root)


def json_tags(span: Json) -> dict:
    return {tag["key"]: tag["value"] for tag in span["tags"]}
