"""``endoked synth``: write a synthetic archive (thin shim over :func:`endoked.synth.archive.generate_archive`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to ``app``."""

    @app.command("synth")
    def synth_cmd(
        out: Annotated[Path, typer.Option("--out", "-o", help="Archive folder to write.")],
        exams: Annotated[int | None, typer.Option("--exams", help="Number of exams \\[default: 40].")] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Seed \\[default: 0].")] = None,
        lang: Annotated[str | None, typer.Option("--lang", help="Report languages, comma-separated: en,zh.")] = None,
        size: Annotated[int | None, typer.Option("--size", help="Frame side in pixels \\[default: 256].")] = None,
        workers: Annotated[int | None, typer.Option("--workers", help="Worker processes \\[default: 1].")] = None,
        config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file (synth section).")] = None,
        set_: Annotated[
            list[str] | None, typer.Option("--set", "-s", help="Override, e.g. --set synth.size=128.")
        ] = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Replace an archive made with other settings.")
        ] = False,
    ) -> None:
        """Write a synthetic archive: manifest.jsonl, frames, and ground truth in DIR/truth/."""
        from endoked.config import resolve_config
        from endoked.synth.archive import generate_archive

        flags: dict[str, Any] = {
            k: v for k, v in (("exams", exams), ("seed", seed), ("size", size), ("workers", workers)) if v is not None
        }
        if lang is not None:
            flags["langs"] = [x.strip() for x in lang.split(",") if x.strip()]
        cfg = resolve_config(None, config, set_ or (), extra={"synth": flags}).synth
        summary = generate_archive(out, cfg, overwrite=overwrite)
        if summary.reused:
            typer.echo(f"{out}: identical archive already present ({summary.exams} exams, {summary.images} frames)")
            return
        typer.echo(
            f"wrote {summary.exams} exams, {summary.images} frames ({summary.polyp_images} with polyps) to "
            f"{out} in {summary.seconds:.1f} s ({summary.frames_per_s:.0f} frames/s)"
        )
