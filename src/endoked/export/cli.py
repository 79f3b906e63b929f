"""``endoked export RUN --format pranet|coco|nnunet --out DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``export`` command."""

    @app.command("export")
    def export_cmd(
        run: Annotated[Path, typer.Argument(help="Run folder.")],
        fmt: Annotated[str, typer.Option("--format", "-f", help="pranet, coco or nnunet.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="New (or empty) destination folder.")],
        source: Annotated[str, typer.Option("--source", help="auto (latest), seg or prompt_seg.")] = "auto",
    ) -> None:
        """Export a run's pseudo labels (with report fields) to a training format."""
        from endoked.export.formats import write_export
        from endoked.export.source import load_items
        from endoked.io import ensure_writable_dir
        from endoked.runfolder import RunFolder, lock_runs

        with lock_runs(run, out):
            stage, items = load_items(RunFolder(run), source)
            ensure_writable_dir(out, create=False)
            summary = write_export(fmt, items, out)
        typer.echo(f"exported {summary['images']} images from {stage} as {fmt} to {out}")
