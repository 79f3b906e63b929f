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
    "seg": ("Synthetic meanDice",),
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


def build_test_set(root: Path, exams: int, seed: int, size: int) -> Path:
    """A PraNet-layout test set (``root/Synthetic/{images,masks}``) from the polyp frames of a separate
    synthetic archive (another seed), so the demo can report segmentation meanDice on unseen frames."""
    import shutil

    from endoked.synth.api import SynthConfig, generate_archive, load_truth

    src = root / "_archive"
    generate_archive(src, SynthConfig(exams=exams, seed=seed, size=size), progress=False)
    truth = load_truth(src)
    images, masks = root / "Synthetic" / "images", root / "Synthetic" / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for image in truth.polyp_images():
        mask = truth.image_mask[image]
        if mask is None:
            continue
        stem = image.replace("/", "_").rsplit(".", 1)[0]
        shutil.copyfile(src / image, images / f"{stem}.jpg")
        shutil.copyfile(mask, masks / f"{stem}.png")
    return root


def run_demo(
    out: Path, exams: int = 60, seed: int = 0, overrides: Sequence[str] = (), overwrite: bool = False
) -> dict[str, dict[str, Any]]:
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
    test_root = build_test_set(out / "testset", max(8, exams // 3), seed + 1000, synth_cfg.size)
    # The synthetic frames are synth.size pixels: a CAM classifier input larger than that adds cost, not detail.
    config = resolve_config(
        "cpu-small",
        None,
        overrides,
        extra={
            "seed": seed,
            "ingest": {"archive": str(marker)},
            "eval": {"data": str(test_root)},
            "cam": {"image_size": synth_cfg.size},
        },
    )
    run = RunFolder(out / "run")
    status = execute(run, config, overwrite=overwrite)
    typer.echo(f"run folder: {run.root}")
    for line in summary_lines(run, status):
        typer.echo(line)
    write_report(run)
    scores = score_run(run, archive)
    eval_entry = run.entry("eval") or {}
    if eval_entry.get("status") == "done":
        scores["seg"] = {
            k.removesuffix("_meanDice") + " meanDice": v
            for k, v in eval_entry.get("counts", {}).items()
            if k.endswith("_meanDice")
        }
    for line in format_scores(scores):
        typer.echo(line)
    typer.echo(f"demo finished in {time.perf_counter() - t0:.0f}s")
    return scores
