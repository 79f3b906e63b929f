"""``endoked cam``: run the cam stage of a run folder, list the CAM methods."""

from __future__ import annotations

import typer

from endoked.cli_options import add_stage_run_command


def register(app: typer.Typer) -> None:
    """Add the ``cam`` command group to ``app``."""
    cam_app = typer.Typer(help="MIL selection -> class activation maps -> polyp boxes per image.", no_args_is_help=True)
    app.add_typer(cam_app, name="cam")

    add_stage_run_command(
        cam_app,
        "cam",
        "Train the CAM classifier on mil/selection and write cam/boxes.parquet, "
        "dropped.parquet, cams.parquet and classifier.pt.",
        "Run folder (ingest, extract and mil done).",
    )

    @cam_app.command("methods")
    def methods_cmd() -> None:
        """List the CAM methods ``cam.method`` accepts."""
        from endoked.cam.methods import METHODS

        for name in METHODS:
            typer.echo(name)
