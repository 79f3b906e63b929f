"""``endoked ingest``: validate an archive into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from endoked.cli_options import ConfigOpt, DryRunOpt, OverwriteOpt, ProfileOpt, SetOpt


def register(app: typer.Typer) -> None:
    """Add the ``ingest`` command to ``app``."""

    @app.command("ingest")
    def ingest_cmd(
        archive: Annotated[Path, typer.Option("--archive", "-a", help="Manifest (.jsonl/.csv/.parquet) or folder.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")],
        profile: ProfileOpt = None,
        config: ConfigOpt = None,
        set_: SetOpt = None,
        overwrite: OverwriteOpt = False,
        dry_run: DryRunOpt = False,
    ) -> None:
        """Validate an archive: writes ingest/exams.parquet, images.parquet and rejects.jsonl (with reasons)."""
        from endoked.runner import run_from_cli

        run_from_cli(
            out=out,
            archive=archive,
            profile=profile,
            config_file=config,
            overrides=set_ or (),
            start="ingest",
            stop="ingest",
            overwrite=overwrite,
            dry_run=dry_run,
        )
