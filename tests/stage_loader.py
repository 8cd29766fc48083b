"""Import a stage's modules in-process, each stage on its own (all stages have an `app.py`)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"  # the project's shared files, beside the repository (as in CI)
_loaded: dict[tuple[str, str], ModuleType] = {}


def shared_file(relative: str) -> Path:
    """A file of ../shared; a missing one fails the test with the reason, never skips it."""
    path = SHARED / relative
    if not path.exists():
        import pytest

        pytest.fail(f"{path} is missing: the tests read ../shared beside the repository (as CI has it)")
    return path


def load_stage_module(folder: str, module: str = "app") -> ModuleType:
    """`folder/module.py` imported as its stage would run it (stage folder first on sys.path).

    Cached: a stage module is imported once per test session. Its local modules (`tracing`, ...)
    are removed from sys.modules afterwards so the next stage imports its own copies.
    """
    key = (folder, module)
    if key in _loaded:
        return _loaded[key]
    path = ROOT / folder
    local = {file.stem for file in path.glob("*.py")}
    saved = {name: sys.modules.pop(name) for name in local if name in sys.modules}
    sys.path.insert(0, str(path))
    try:
        loaded = importlib.import_module(module)
    finally:
        sys.path.remove(str(path))
        for name in local:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    _loaded[key] = loaded
    return loaded
