"""``endoked mil``: run the mil stage, list encoders, score images with a MIL checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from endoked.cli_options import add_stage_run_command


def register(app: typer.Typer) -> None:
    """Add the ``mil`` command group to ``app``."""
    mil_app = typer.Typer(
        help="Report labels -> polyp score per image (multiple-instance learning).", no_args_is_help=True
    )
    app.add_typer(mil_app, name="mil")

    add_stage_run_command(
        mil_app,
        "mil",
        "Train the MIL model and write mil/image_scores.parquet, selection.parquet, model.pt, metrics.json.",
        "Run folder (ingest and extract done).",
    )

    @mil_app.command("backbones")
    def backbones_cmd() -> None:
        """List the registered encoders and where their pretrained weights would come from."""
        from endoked.backbones import backbone_info, list_backbones
        from endoked.backbones.weights import package_weight_path

        for name in list_backbones():
            info = backbone_info(name)
            if package_weight_path(info) is not None:
                where = f"installed ({info.package.pip_name})" if info.package else "installed"
            elif info.package is not None:
                where = f"not installed: {info.package.install_command}"
            else:
                where = info.notes or "local file only"
            typer.echo(f"{name:24s} {info.input_size[-1]:4d}px  {info.license:14s} {where}")

    @mil_app.command("score")
    def score_cmd(
        model: Annotated[Path, typer.Option("--model", "-m", help="MIL checkpoint (mil/model.pt).")],
        images: Annotated[Path, typer.Option("--images", "-i", help="Folder of images (searched recursively).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write: image,score.")],
        device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")] = "auto",
    ) -> None:
        """Score images with a MIL checkpoint (polyp probability per image)."""
        from endoked.device import resolve_device
        from endoked.mil.api import score_folder
        from endoked.runfolder import lock_runs

        with lock_runs(out):
            n = score_folder(model, images, out, device=str(resolve_device(device)))
        typer.echo(f"scored {n} images -> {out}")
