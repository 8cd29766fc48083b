"""The toolkit's layers, as its folder names say: nothing imports upward, and no module imports itself back.

In the trace store, a span enters through `receivers/`, is kept by `store` (and its `journal`), is read through
`query`, is shown by `api/` and `web/`, which `app` mounts, which `collector` runs. Under them all is `model`,
the one model of a trace (the standard library only), which the terminal tools read and nothing else.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support.stage_loader import ROOT

PACKAGE = ROOT / "workshop"
STORE = "workshop.tracestore"
LAYERS = [  # lowest first: a module may import its own layer's modules and lower ones
    [f"{STORE}.model", f"{STORE}.durations", f"{STORE}.diagnosis"],
    [
        f"{STORE}.receivers",
        f"{STORE}.store",
        f"{STORE}.journal",
        f"{STORE}.query",
        f"{STORE}.sampling",
        f"{STORE}.spanmetrics",
    ],
    [f"{STORE}.api", f"{STORE}.web"],
    [f"{STORE}.app"],
    [f"{STORE}.collector"],
]
TERMINAL_MAY_IMPORT = (
    "workshop.terminal",
    f"{STORE}.model",
    f"{STORE}.durations",
    f"{STORE}.diagnosis",
    "workshop.errors",
    "workshop.ports",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(name: str) -> set[str]:
    """The workshop modules `name` imports, anywhere in it (inside functions too)."""
    path = MODULES[name]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else _relative(name, path, node)
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names)
    return {module for module in found if module in MODULES and module != name}


def _relative(name: str, path: Path, node: ast.ImportFrom) -> str:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    return ".".join(package[: len(package) - node.level + 1] + [node.module])


def layer(name: str) -> int | None:
    for number, members in enumerate(LAYERS):
        if any(name == member or name.startswith(member + ".") for member in members):
            return number
    return None


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
        for name in MODULES
        if layer(name) is not None
        for target in imports(name)
        if layer(target) is not None and layer(target) > layer(name)
    ]
    assert not upward


def test_every_module_of_the_trace_store_has_a_layer():
    """A new module is placed in LAYERS, or the test above would not look at it."""
    unplaced = [name for name in MODULES if name.startswith(STORE + ".") and layer(name) is None]
    assert not unplaced


def test_the_trace_store_imports_no_toolkit_above_it():
    """The store is a Jaeger: it knows nothing of lessons, the runner or the terminal."""
    allowed = (STORE, "workshop.errors", "workshop.ports", "workshop.serving")
    outside = [
        f"{name} imports {target}"
        for name in MODULES
        if name.startswith(STORE)
        for target in imports(name)
        if not target.startswith(allowed)
    ]
    assert not outside


def test_ingest_never_reaches_the_trace_doctor():
    """The doctor reads traces when they are asked for (a page, `explain`), never as spans arrive: nothing the
    receivers and the store import, however indirectly, is the doctor (`make bench`: "nothing at ingest")."""
    ingest = [name for name in MODULES if name.startswith((f"{STORE}.receivers", f"{STORE}.store", f"{STORE}.journal"))]
    reached, todo = set(), list(ingest)
    while todo:
        for target in imports(todo.pop()):
            if target not in reached:
                reached.add(target)
                todo.append(target)
    assert ingest and f"{STORE}.diagnosis" not in reached


def test_terminal_tools_read_the_model_only():
    wrong = [
        f"{name} imports {target}"
        for name in MODULES
        if name.startswith("workshop.terminal")
        for target in imports(name)
        if not target.startswith(TERMINAL_MAY_IMPORT)
    ]
    assert not wrong


def test_no_import_cycle_among_the_toolkit_s_modules():
    graph = {name: imports(name) for name in MODULES}
    cycles = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles


def test_the_model_is_the_standard_library_only():
    for name in (f"{STORE}.model", f"{STORE}.durations", f"{STORE}.diagnosis"):
        tree = ast.parse(MODULES[name].read_text())
        top = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        top |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert top <= set(sys.stdlib_module_names) | {"__future__", "workshop"}, name  # workshop: the model itself


def test_the_waterfall_loads_no_wire_format():
    check = "import sys, workshop.terminal.waterfall; print(sorted({'thrift', 'jaeger_client'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
