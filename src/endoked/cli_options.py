"""Typer option aliases shared by commands that build a run config (import at module level)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProfileOpt = Annotated[str | None, typer.Option("--profile", help="Named profile: cpu-small or gpu-paper.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
SetOpt = Annotated[list[str] | None,
                   typer.Option("--set", "-s", help="Override, e.g. --set mil.epochs=3 (repeatable).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and exit.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Re-run stages even when up to date.")]
