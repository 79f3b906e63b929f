"""Degenerate figures of a finished (or partly finished) run, as warnings a user can act on.

A small archive can run every stage to the end and still produce figures that mean nothing: a handful of
pseudo masks, all on polyp-free frames; a bag classifier validated on two bags; a segmentation model with
no validation image (``val_mean_dice=nan``); MIL image scores no better than chance against the archive's
ground truth. :func:`run_warnings` reads the ledger (and, for synthetic or benchmark archives, the truth)
and returns one :class:`RunWarning` per such figure, each naming what was too few and what to change. The
CLI summary of ``endoked run`` and the run report both show them.

Each stage's hard minimum (below it the stage stops with a message) is listed in :data:`STAGE_MINIMUMS`; the
thresholds below which a figure is flagged are the ``MIN_*`` and ``CHANCE_*`` constants.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from endoked.runfolder import RunFolder

#: What each stage needs at the least; below it the stage ends with a message naming what was too few.
STAGE_MINIMUMS: dict[str, str] = {
    "ingest": "1 exam with at least 1 readable image",
    "extract": "1 exam report",
    "mil": "1 positive and 1 negative exam (bag) with readable images",
    "cam": "1 MIL-selected positive image and 1 negative image",
    "prompt_seg": "1 image with a CAM box (or a rescued image)",
    "seg": "1 usable pseudo mask",
    "eval": "none (no configured test set: nothing is scored)",
}

#: Below these, a finished stage's figures are flagged as unreliable.
MIN_PSEUDO_MASKS = 20
#: Below this share of MIL-selected images with a CAM box (given enough images), the CAMs are suspect.
MIN_BOXED_SHARE = 0.2
MIN_VAL_BAGS = 4
MIN_MIL_EXAMS = 20
#: An AUROC at or below this is "at chance" (0.5 is a coin; small sets scatter around it).
CHANCE_AUROC = 0.6

ADD_EXAMS = "add exams to the archive (a few hundred for usable pseudo masks)"


@dataclass(frozen=True)
class RunWarning:
    """One degenerate figure: the stage, what is wrong, and what to change."""

    stage: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.stage}] {self.message}; {self.fix}"


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _nan(value: Any) -> bool:
    v = _num(value)
    return v is not None and math.isnan(v)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def ledger_warnings(stages: dict[str, Any], run: RunFolder | None = None) -> list[RunWarning]:
    """Warnings from the ledger's per-stage counts (and, given the run, the stages' metrics files)."""
    out: list[RunWarning] = []

    def counts(stage: str) -> dict[str, Any] | None:
        entry = stages.get(stage) or {}
        return entry.get("counts") if entry.get("status") == "done" else None

    mil = counts("mil")
    if mil is not None:
        n_exams = int(mil.get("positive", 0) or 0) + int(mil.get("negative", 0) or 0)
        val_bags = _num(mil.get("val_bags"))
        auroc = _num(mil.get("val_bag_auroc"))
        if n_exams < MIN_MIL_EXAMS:
            out.append(
                RunWarning(
                    "mil",
                    f"the bag classifier learnt from {n_exams} labelled exams (fewer than {MIN_MIL_EXAMS}); its image "
                    "scores, and the CAM boxes built on them, are unreliable",
                    ADD_EXAMS,
                )
            )
        if val_bags is not None and val_bags < MIN_VAL_BAGS:
            out.append(
                RunWarning(
                    "mil",
                    f"validation AUROC {mil.get('val_bag_auroc')} is measured on {int(val_bags)} bags (fewer than "
                    f"{MIN_VAL_BAGS}) and means little",
                    f"{ADD_EXAMS}, or raise mil.val_fraction",
                )
            )
        if auroc is not None and (math.isnan(auroc) or auroc <= CHANCE_AUROC):
            out.append(
                RunWarning(
                    "mil",
                    f"bag classifier at chance: validation bag AUROC {_show(auroc)}",
                    f"{ADD_EXAMS}, or train longer (mil.epochs)",
                )
            )
    cam = counts("cam")
    if cam is not None:
        boxed, selected = int(cam.get("images_with_boxes", 0) or 0), int(cam.get("images", 0) or 0)
        if selected >= 2 * MIN_PSEUDO_MASKS and boxed < MIN_BOXED_SHARE * selected:
            # many images, few boxes: not an archive too small, but maps the box filters reject
            reasons = cam.get("drop_reasons") or {}
            top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -int(kv[1]))[:3])
            out.append(
                RunWarning(
                    "cam",
                    f"CAM boxes on {boxed} of {selected} MIL-selected images ({boxed / selected:.0%}; dropped: "
                    f"{top or 'no reasons recorded'}): the CAMs do not single out one region, as when the "
                    "classifier found a cue spread over the whole frame (image source, sharpness, lighting)",
                    "look at the CAM overlays in the report; check that polyp-free frames come from the same "
                    "sources and devices as polyp frames; loosen cam.boxes.max_components / drop_border / "
                    "max_area only if the maps do show the polyp",
                )
            )
        elif boxed < MIN_PSEUDO_MASKS:
            out.append(RunWarning("cam", f"CAM boxes on {boxed} images (fewer than {MIN_PSEUDO_MASKS})", ADD_EXAMS))
    ps = counts("prompt_seg")
    if ps is not None:
        n = int(ps.get("pseudo_labels", 0) or 0)
        if n < MIN_PSEUDO_MASKS:
            out.append(
                RunWarning(
                    "prompt_seg",
                    f"pseudo masks on {n} frames (fewer than {MIN_PSEUDO_MASKS}): too few to train a segmentation "
                    "model worth using",
                    ADD_EXAMS,
                )
            )
    seg = counts("seg") or {}
    if "val_mean_dice" in seg and (seg["val_mean_dice"] is None or _nan(seg["val_mean_dice"])):
        n_val = _seg_val_images(run)
        out.append(
            RunWarning(
                "seg",
                "the segmentation model was not validated (val_mean_dice=nan"
                + (f", {n_val} validation images)" if n_val is not None else ")"),
                f"{ADD_EXAMS}, or raise seg.val_fraction",
            )
        )
    ev = counts("eval")
    if ev is not None and int(ev.get("sets", 0) or 0) == 0:
        out.append(
            RunWarning(
                "eval",
                "no test set was scored (sets=0): the run has no held-out figure",
                "set eval.data to a folder of test sets (images/ and masks/ per set)",
            )
        )
    return out


def _seg_val_images(run: RunFolder | None) -> int | None:
    if run is None:
        return None
    rounds = _json(run.root / "seg" / "metrics.json").get("rounds") or []
    last = rounds[-1] if rounds and isinstance(rounds[-1], dict) else {}
    n = last.get("n_val")
    return int(n) if isinstance(n, int) else None


def _show(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.2f}"


def truth_warnings(scores: dict[str, dict[str, Any]]) -> list[RunWarning]:
    """Warnings from the scores against an archive's ground truth (:func:`endoked.scoring.score_run`)."""
    out: list[RunWarning] = []
    mil = scores.get("mil") or {}
    inst = _num(mil.get("instance_auroc"))
    if inst is not None and (math.isnan(inst) or inst <= CHANCE_AUROC):
        out.append(
            RunWarning(
                "mil",
                f"MIL instance AUROC {_show(inst)} against the archive's truth: the image scores are no better than "
                "chance",
                f"{ADD_EXAMS}, or train longer (mil.epochs)",
            )
        )
    ps = scores.get("prompt_seg") or {}
    n = int(ps.get("n_masks", 0) or 0)
    if n and _num(ps.get("coverage")) == 0.0:
        out.append(
            RunWarning(
                "prompt_seg",
                f"none of the {n} pseudo masks lies on a polyp (truth coverage 0): they mark polyp-free frames",
                ADD_EXAMS,
            )
        )
    return out


def run_warnings(run: RunFolder, archive: str | Path | None = None) -> list[RunWarning]:
    """Every warning about ``run``'s finished stages; with an archive holding ground truth, its scores too."""
    out = ledger_warnings(run.ledger()["stages"], run)
    if archive is not None and Path(archive).exists():
        from endoked.scoring import score_run

        try:
            scores = score_run(run, archive)
        except Exception:  # scoring against truth is a bonus; a run folder it cannot read gives no warning
            scores = {}
        out += truth_warnings(scores)
    return out
