"""Lesson 9 runs Traefik (from PyPI) and a Node.js service: its tests need both, ready (`make test` runs
`python -m workshop prepare` first). Where they are missing the tests skip saying so; in CI they fail."""

from __future__ import annotations

from tests.support.ci import require
from tests.support.stage_loader import ROOT
from workshop.toolchain import NODE_FLOOR, STAMP, node_version, traefik_binary

STAGE = "step9_edge_polyglot"
NODE_PROXY = ROOT / STAGE / "github-proxy"


def missing() -> str | None:
    if traefik_binary() is None:
        return "Traefik is not installed in this environment (make prepare installs it)"
    version = node_version()
    if version is None or version < NODE_FLOOR:
        return f"Node.js {'.'.join(map(str, NODE_FLOOR))} or newer is not on PATH"
    if not (NODE_PROXY / "node_modules" / STAMP).is_file():
        return f"the Node proxy's packages are not installed (make prepare runs npm ci in {NODE_PROXY})"
    return None


def require_lesson9_tools() -> None:
    require(missing(), "lesson 9's tests")
