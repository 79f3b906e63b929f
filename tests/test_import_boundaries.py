"""Stage packages use each other only through their public package API.

A stage (every subpackage of ``endoked`` except the shared :mod:`endoked.backbones`) may import shared root
modules (``endoked.io``, ``endoked.imaging``, ...) and a sibling stage's package (``from endoked.seg import
predict_folder``), never a sibling's submodules (``endoked.seg.predict``): those are internals that can move.
Imports are found with :mod:`ast` anywhere in a file (also inside functions), as ``import a.b``, ``from a.b
import c``, relative imports, and ``importlib.import_module("a.b")`` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import endoked

PACKAGE_ROOT = Path(endoked.__file__).resolve().parent
SHARED_PACKAGES = frozenset({"backbones"})


def stage_packages(root: Path = PACKAGE_ROOT) -> dict[str, frozenset[str]]:
    """Stage name -> names of its direct submodules and subpackages."""
    stages: dict[str, frozenset[str]] = {}
    for pkg in sorted(p for p in root.iterdir() if (p / "__init__.py").is_file()):
        if pkg.name in SHARED_PACKAGES:
            continue
        subs = {p.stem for p in pkg.glob("*.py") if p.stem != "__init__"}
        subs |= {p.name for p in pkg.iterdir() if (p / "__init__.py").is_file()}
        stages[pkg.name] = frozenset(subs)
    return stages


def _imported_names(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """``(line, dotted module or module.name)`` for every import in ``tree``; ``package`` is the file's package
    (``endoked.seg``), used to resolve relative imports."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names if alias.name != "*")
            found.append((node.lineno, module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def boundary_violations(source: str, filename: str, package: str, stages: dict[str, frozenset[str]]) -> list[str]:
    """``filename:line: ...`` for every import of a sibling stage's submodule in ``source``.

    Args:
        source: Python source of a module of ``package`` (``endoked.seg``, or deeper for a nested package).
        stages: :func:`stage_packages`.
    """
    own_stage = package.split(".")[1]
    out: list[str] = []
    seen: set[tuple[int, str]] = set()
    for line, name in sorted(_imported_names(ast.parse(source, filename), package)):
        parts = name.split(".")
        if len(parts) < 3 or parts[0] != "endoked" or parts[1] == own_stage or parts[1] not in stages:
            continue
        if parts[2] not in stages[parts[1]]:  # from endoked.seg import predict_folder: a package attribute
            continue
        target = ".".join(parts[:3])
        if (line, target) not in seen:
            seen.add((line, target))
            out.append(
                f"{filename}:{line}: imports {target}, an internal module of stage {parts[1]!r}; "
                f"import from endoked.{parts[1]} (export the name in its __init__) or a shared root module"
            )
    return out


def test_no_stage_imports_a_sibling_stages_internals() -> None:
    stages = stage_packages()
    assert {"cam", "mil", "seg", "prompt_seg", "eval", "biopsy"} <= stages.keys()
    problems: list[str] = []
    n_files = 0
    for stage in stages:
        for path in sorted((PACKAGE_ROOT / stage).rglob("*.py")):
            n_files += 1
            rel = path.relative_to(PACKAGE_ROOT.parent)
            package = ".".join(rel.parent.parts)  # a module's package; an __init__.py is its own package
            problems += boundary_violations(path.read_text(encoding="utf-8"), rel.as_posix(), package, stages)
    assert n_files > 50
    assert not problems, "sibling-stage internals imported:\n" + "\n".join(problems)


STAGES = {
    "cam": frozenset({"core", "stage", "config"}),
    "seg": frozenset({"predict", "data", "refine"}),
    "mil": frozenset({"encoder", "metrics"}),
}

BAD = """\
import numpy as np
from endoked.cam.core import upsample_cam
import endoked.mil.encoder as enc


def later():
    from endoked.mil import metrics
    import importlib
    return importlib.import_module("endoked.cam.stage")


from ..cam.config import CamConfig
"""

GOOD = """\
from endoked import tables
from endoked.imaging import read_rgb
from endoked.boxes import BoxFilter
from endoked.backbones.split import SplitEncoder
import endoked.cam
from endoked.cam import read_everything
from endoked.seg.data import SegItem
from . import data
from .predict import Predictor


def later():
    from endoked.mil import build_encoder
    return build_encoder
"""


def test_checker_flags_every_form_of_a_bad_import() -> None:
    problems = boundary_violations(BAD, "endoked/seg/x.py", "endoked.seg", STAGES)
    lines = [p.split(":")[1] for p in problems]
    assert lines == ["2", "3", "7", "9", "12"], problems
    assert "endoked/seg/x.py:2: imports endoked.cam.core" in problems[0]
    assert "endoked.mil.encoder" in problems[1] and "endoked.mil.metrics" in problems[2]
    assert "endoked.cam.stage" in problems[3] and "endoked.cam.config" in problems[4]


def test_checker_accepts_shared_modules_package_api_and_own_internals() -> None:
    assert boundary_violations(GOOD, "endoked/seg/x.py", "endoked.seg", STAGES) == []
