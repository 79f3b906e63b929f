"""Typer option aliases shared by commands that build a run config (import at module level)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProfileOpt = Annotated[str | None, typer.Option("--profile", help="Named profile: cpu-small or gpu-paper.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config key: --set SECTION.KEY=VALUE (repeatable; see config show)."),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option("--device", help="Where models run: auto, cpu, cuda, cuda:N or mps (default: the config's device)."),
]


def device_override(device: str | None) -> list[str]:
    """``--device X`` as the ``--set device=X`` it stands for (an explicit later ``--set`` wins)."""
    return [f"device={device}"] if device else []


DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and exit.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Re-run stages even when up to date.")]


def add_stage_run_command(app: typer.Typer, stage: str, doc: str, out_help: str) -> None:
    """Add ``run`` to a stage's command group: run that one stage of an existing run folder."""

    def run_cmd(
        out: Path,
        profile: ProfileOpt = None,
        config: ConfigOpt = None,
        set_: SetOpt = None,
        overwrite: OverwriteOpt = False,
        dry_run: DryRunOpt = False,
        device: DeviceOpt = None,
    ) -> None:
        from endoked.runner import run_from_cli

        run_from_cli(
            out=out,
            archive=None,
            profile=profile,
            config_file=config,
            overrides=[*device_override(device), *(set_ or ())],
            start=stage,
            stop=stage,
            overwrite=overwrite,
            dry_run=dry_run,
        )

    run_cmd.__doc__ = doc
    # a real object, not a string: the help text is a local, invisible to typer's evaluation of annotations
    run_cmd.__annotations__["out"] = Annotated[Path, typer.Option("--out", "-o", help=out_help)]
    app.command("run")(run_cmd)
