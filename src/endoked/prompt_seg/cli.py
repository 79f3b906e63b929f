"""``endoked prompt-seg``: run the prompt_seg stage of a run folder, list the box-prompted segmenters."""

from __future__ import annotations

import typer

from endoked.cli_options import add_stage_run_command


def register(app: typer.Typer) -> None:
    """Add the ``prompt-seg`` command group to ``app``."""
    ps_app = typer.Typer(help="CAM boxes -> pseudo masks from a box-prompted segmenter.", no_args_is_help=True)
    app.add_typer(ps_app, name="prompt-seg")

    add_stage_run_command(
        ps_app,
        "prompt_seg",
        "Segment the cam stage's boxes and write prompt_seg/pseudo_labels.parquet, rejected.parquet and masks/.",
        "Run folder (ingest to cam done).",
    )

    @ps_app.command("segmenters")
    def segmenters_cmd() -> None:
        """List the segmenters ``prompt_seg.segmenter`` accepts."""
        from endoked.prompt_seg.base import SEGMENTERS

        for name in SEGMENTERS:
            typer.echo(name)
