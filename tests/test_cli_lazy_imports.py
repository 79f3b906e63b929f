"""Importing the CLI and printing its help must not import torch, timm or torchvision."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("torch", "timm", "torchvision")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)


def test_import_cli_does_not_import_torch() -> None:
    proc = _run(f"import endoked.cli, sys; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from endoked.cli import app\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['extract', '--help'], ['seg', '--help']):\n"
        "    res = r.invoke(app, args)\n"
        "    assert res.exit_code == 0, res.output\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
