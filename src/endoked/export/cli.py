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
        out: Annotated[
            Path | None,
            typer.Option("--out", "-o", help="New (or empty) destination folder; nnunet: default $nnUNet_raw."),
        ] = None,
        source: Annotated[str, typer.Option("--source", help="auto (latest), seg or prompt_seg.")] = "auto",
        dataset_id: Annotated[int, typer.Option("--dataset-id", help="nnunet: dataset id (1-999).")] = 501,
        name: Annotated[str, typer.Option("--name", help="nnunet: dataset name.")] = "EndokedPolyp",
        negatives: Annotated[
            bool,
            typer.Option("--negatives/--no-negatives", help="nnunet: add the MIL-selected polyp-free frames."),
        ] = True,
        images_ts: Annotated[
            Path | None, typer.Option("--images-ts", help="nnunet: folder of unlabelled test images for imagesTs.")
        ] = None,
        image_prefix: Annotated[
            str, typer.Option("--image-prefix", help="labelstudio: prefix of each task's image URL.")
        ] = "images/",
    ) -> None:
        """Export a run's pseudo labels (with report fields) to a training format or a labelling tool."""
        import os

        from endoked.errors import ConfigError
        from endoked.export.formats import NNUNET_RAW_ENV, write_export
        from endoked.export.source import load_items, negative_items
        from endoked.io import ensure_writable_dir
        from endoked.runfolder import RunFolder, lock_runs

        if out is None:
            raw = os.environ.get(NNUNET_RAW_ENV) if fmt == "nnunet" else None
            if not raw:
                hint = f" (or set ${NNUNET_RAW_ENV})" if fmt == "nnunet" else ""
                raise ConfigError(f"--out is required{hint}")
            out = Path(raw)
        options: dict[str, object] = {}
        if fmt == "nnunet":
            options = {"dataset_id": dataset_id, "name": name, "images_ts": images_ts}
        elif fmt == "labelstudio":
            options = {"image_prefix": image_prefix}
        with lock_runs(run, out):
            rf = RunFolder(run)
            stage, items = load_items(rf, source)
            if fmt == "nnunet" and negatives:
                items = items + negative_items(rf, items)
            ensure_writable_dir(out, create=False)
            summary = write_export(fmt, items, out, **options)
        where = summary.get("dataset", out)
        typer.echo(f"exported {summary['images']} images from {stage} as {fmt} to {where}")

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
