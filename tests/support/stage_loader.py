"""Import a stage's modules in-process, each stage on its own (all stages have an `app.py`)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent.parent
_loaded: dict[tuple[str, str], ModuleType] = {}


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
