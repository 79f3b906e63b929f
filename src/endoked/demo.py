"""``endoked demo``: synthesise a small archive, run every available stage with the ``cpu-small``
profile and print how each stage scores against the synthetic truth."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from endoked.config import resolve_config
from endoked.runfolder import RunFolder
from endoked.runner import execute, summary_lines, write_report
from endoked.scoring import score_run

logger = logging.getLogger(__name__)

HEADLINES: dict[str, tuple[str, ...]] = {
    "ingest": ("exams", "exams_in_truth", "images"),
    "extract": ("polyp_acc", "polyp_count_acc", "pathology_acc"),
    "mil": ("instance_auroc", "instance_auroc_positive_bags"),
    "prompt_seg": ("dice", "coverage", "masks_on_polyp_free"),
    "seg": ("meanDice",),
}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def format_scores(scores: dict[str, dict[str, Any]]) -> list[str]:
    """The demo's score table as text lines."""
    lines = ["stage        score"]
    for stage, vals in scores.items():
        keys = HEADLINES.get(stage, tuple(vals))
        lines.append(f"  {stage:<11} " + ", ".join(f"{k}={_fmt(vals[k])}" for k in keys if k in vals))
    return lines


def run_demo(out: Path, exams: int = 40, seed: int = 0, overrides: Sequence[str] = (),
             overwrite: bool = False) -> dict[str, dict[str, Any]]:
    """Build ``out/archive`` (synthetic, skipped when present), run ``out/run`` with cpu-small, score it."""
    from endoked.synth.api import generate_archive
    from endoked.synth.config import SynthConfig

    out = Path(out)
    archive = out / "archive"
    t0 = time.perf_counter()
    base = resolve_config("cpu-small")
    synth_cfg = SynthConfig.model_validate({**base.synth.model_dump(), "exams": exams, "seed": seed})
    marker = archive / "manifest.jsonl"
    typer.echo(f"synthetic archive: {exams} exams in {archive}")
    generate_archive(archive, synth_cfg, overwrite=overwrite)  # reused when already there with these settings
    config = resolve_config("cpu-small", None, overrides, extra={"seed": seed, "ingest": {"archive": str(marker)}})
    run = RunFolder(out / "run")
    status = execute(run, config, overwrite=overwrite)
    typer.echo(f"run folder: {run.root}")
    for line in summary_lines(run, status):
        typer.echo(line)
    write_report(run)
    scores = score_run(run, archive)
    for line in format_scores(scores):
        typer.echo(line)
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f}s")
    return scores
