"""``endoked export RUN --format pranet|coco|nnunet|cvat|labelstudio --out DIR`` and ``endoked import-labels RUN
FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``export`` and ``import-labels`` commands."""

    @app.command("export")
    def export_cmd(
        run: Annotated[Path, typer.Argument(help="Run folder.")],
        fmt: Annotated[str, typer.Option("--format", "-f", help="pranet, coco, nnunet, cvat or labelstudio.")],
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

    @app.command("import-labels")
    def import_labels_cmd(
        run: Annotated[Path, typer.Argument(help="Run folder the labels were exported from.")],
        file: Annotated[Path, typer.Argument(help="CVAT for images 1.1 XML (or its zip) or Label Studio JSON.")],
        fmt: Annotated[str, typer.Option("--format", "-f", help="auto (by suffix), cvat or labelstudio.")] = "auto",
        reviewer: Annotated[
            str | None, typer.Option("--reviewer", help="Reviewer name recorded (default: the tool's annotator).")
        ] = None,
        accept_unchanged: Annotated[
            bool, typer.Option("--accept-unchanged", help="Record unchanged masks as accepted.")
        ] = False,
    ) -> None:
        """Record corrected masks from CVAT or Label Studio as reviewed labels of the run."""
        from endoked.export.labels import import_labels
        from endoked.runfolder import RunFolder, lock_runs

        with lock_runs(run):
            s = import_labels(RunFolder(run), file, fmt, reviewer=reviewer, accept_unchanged=accept_unchanged)
        typer.echo(
            f"{s.images} images from {file} ({s.format}): {s.fixed} fixed, {s.rejected} rejected, {s.accepted} "
            f"accepted, {s.unchanged} unchanged, {s.already} already imported; {s.labels} report fields corrected"
        )
