"""Loading the repository's scripts (benchmarks/, docs/) and single files of other packages as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_script(path: Path, name: str | None = None, register: bool = True) -> ModuleType:
    """The module of the Python file ``path`` (relative paths are taken from the repository root), registered in
    ``sys.modules`` under ``name`` (default: the file's stem) unless ``register`` is False, so that the
    dataclasses and pickles it defines resolve."""
    path = path if path.is_absolute() else REPO / path
    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
