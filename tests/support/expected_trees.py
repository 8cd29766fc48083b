"""The span trees each traced stage must produce for its demo request (first call for a repo: two 202s).

The in-memory tests and the end-to-end tests assert the same trees: (service, operation, [children in
start order]).
"""

from __future__ import annotations

from workshop.tracestore.model import Json, SpanNode, TraceTree


def github_calls(service: str) -> tuple:
    """get_repo_contributors with its three attempts: two 202s, then the data."""
    return (service, "get_repo_contributors", [(service, "github_request", [])] * 3)


MONOLITH = (
    "contributors",
    "contributors",
    [github_calls("contributors"), ("contributors", "clean_github_data", [])],
)
DISTRIBUTED = (
    "gateway",
    "contributors",
    [
        ("gateway", "call_github_proxy", [("github-proxy", "stats", [github_calls("github-proxy")])]),
        ("gateway", "clean_github_data", []),
    ],
)
QUEUED = (
    "gateway",
    "contributors",
    [
        ("gateway", "call_github_proxy", [("github-proxy", "stats", [github_calls("github-proxy")])]),
        ("gateway", "send_clean_job", [("worker", "handle_clean_job", [("worker", "clean_github_data", [])])]),
    ],
)
# Lesson 8: the instrumentations' spans (Flask's SERVER spans named by route, `requests`' CLIENT spans, Redis
# commands) around the lesson's own: each GitHub attempt is a CLIENT span GET under get_repo_contributors.
NATIVE = (
    "gateway",
    "GET /contributors/<owner>/<repo>",
    [
        (
            "gateway",
            "GET",
            [
                (
                    "github-proxy",
                    "GET /stats/<owner>/<repo>",
                    [("github-proxy", "get_repo_contributors", [("github-proxy", "GET", [])] * 3)],
                )
            ],
        ),
        (
            "gateway",
            "send_clean_job",
            [
                ("gateway", "LPUSH", []),
                ("gateway", "BRPOP", []),
                ("worker", "handle_clean_job", [("worker", "clean_github_data", []), ("worker", "LPUSH EXPIRE", [])]),
            ],
        ),
    ],
)
EXPECTED_TREES = {
    "step2_spans": MONOLITH,
    "step3_tags_logs": MONOLITH,
    "step4_distributed": DISTRIBUTED,
    "step5_queue": QUEUED,
    "step6_baggage": QUEUED,
    "step7_opentelemetry_shim": QUEUED,
    "step8_opentelemetry": NATIVE,
}


def services(tree: tuple) -> set[str]:
    service, _, children = tree
    return {service}.union(*(services(child) for child in children))


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
