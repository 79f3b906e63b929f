"""Scores of a run against ground truth, for archives that carry it (synthetic archives and benchmark
archives built from public datasets keep truth in ``ARCHIVE/truth/``, which no stage reads).

Truth layout: ``truth/exams.jsonl`` (``id`` + report-label contract keys), ``truth/images.csv`` (image,
exam_id, polyp 0/1, mask: PNG path relative to the archive root, empty when no polyp; optional ``origin``:
the dataset or centre the frame came from, when the pseudo-mask figures are also given per origin).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from endoked import tables
from endoked.imaging import read_mask
from endoked.runfolder import RunFolder
from endoked.stats import auroc, average_precision

logger = logging.getLogger(__name__)


@dataclass
class Truth:
    """Ground truth of an archive."""

    root: Path
    exams: dict[str, dict[str, Any]]
    polyp: dict[tuple[str, str], int]  # (exam_id, image) -> 0/1
    masks: dict[tuple[str, str], str]  # (exam_id, image) -> mask path relative to root
    origin: dict[tuple[str, str], str] = field(default_factory=dict)  # (exam_id, image) -> source, when known

    def mask(self, exam_id: str, image: str) -> np.ndarray | None:
        """The true mask (H, W) bool of an image, or None when the image has no polyp."""
        rel = self.masks.get((exam_id, image))
        if not rel:
            return None
        return read_mask(self.root / rel)


def load_truth(archive: str | Path) -> Truth | None:
    """Load ``truth/`` beside an archive's manifest (or in the archive folder); None when absent."""
    root = Path(archive)
    if root.is_file():
        root = root.parent
    tdir = root / "truth"
    if not (tdir / "images.csv").is_file():
        return None
    exams: dict[str, dict[str, Any]] = {}
    if (tdir / "exams.jsonl").is_file():
        for line in (tdir / "exams.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                exams[str(rec.get("id", rec.get("exam_id")))] = rec
    polyp: dict[tuple[str, str], int] = {}
    masks: dict[tuple[str, str], str] = {}
    origin: dict[tuple[str, str], str] = {}
    with open(tdir / "images.csv", newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            key = (rec["exam_id"], rec["image"])
            polyp[key] = int(rec["polyp"])
            if rec.get("mask"):
                masks[key] = rec["mask"]
            if rec.get("origin"):
                origin[key] = rec["origin"]
    return Truth(root, exams, polyp, masks, origin)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty."""
    inter = np.logical_and(a, b).sum()
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * inter / total)


def score_labels(truth: Truth, labels_path: Path) -> dict[str, Any]:
    """Report-label accuracy of the extract stage against truth (polyp status, count, pathology)."""
    rows = tables.read(labels_path, "extract/labels").to_pylist()
    fields = {"polyp": 0, "polyp_count": 0, "pathology": 0, "malignancy_suspected": 0}
    n = 0
    for row in rows:
        gold = truth.exams.get(row["exam_id"])
        if gold is None:
            continue
        n += 1
        for f in fields:
            fields[f] += int(row.get(f) == gold.get(f))
    return {"n": n, **{f"{k}_acc": (v / n if n else float("nan")) for k, v in fields.items()}}


def score_mil(truth: Truth, scores_path: Path) -> dict[str, Any]:
    """Instance AUROC of MIL image scores: over all images, and over frames of positive bags."""
    t = tables.read(scores_path, "mil/image_scores").to_pylist()
    keyed = [(r["score"], truth.polyp.get((r["exam_id"], r["image"])), r.get("bag_label")) for r in t]
    keyed = [k for k in keyed if k[1] is not None and k[0] is not None]  # undecodable images have no score
    s = np.array([k[0] for k in keyed], dtype=float)
    y = np.array([k[1] for k in keyed], dtype=int)
    pos = np.array([k[2] == 1 for k in keyed], dtype=bool)
    return {
        "n": len(keyed),
        "instance_auroc": auroc(y, s),
        "instance_ap": average_precision(y, s),
        "instance_auroc_positive_bags": auroc(y[pos], s[pos]) if pos.any() else float("nan"),
    }


def score_pseudo_masks(truth: Truth, run: RunFolder, table_path: Path) -> dict[str, Any]:
    """Pseudo-mask Dice (mean over images that got one and truly show a polyp), coverage of true polyp
    frames, and the fraction of truly polyp-free frames that received a mask."""
    rows = tables.read(table_path, "prompt_seg/pseudo_labels").to_pylist()
    dices: dict[tuple[str, str], float] = {}
    got = set()
    for r in rows:
        key = (r["exam_id"], r["image"])
        got.add(key)
        if truth.polyp.get(key) == 1:
            gt = truth.mask(*key)
            pred = read_mask(run.abs(r["mask"]))
            if gt is not None and gt.shape == pred.shape:
                dices[key] = dice(pred, gt)
    out = _mask_figures(truth.polyp, dices, got)
    out = {"n_masks": len(rows), **out}
    for origin in sorted(set(truth.origin.values())):  # the same figures per source of the frames
        keys = {k for k, o in truth.origin.items() if o == origin}
        part = _mask_figures({k: v for k, v in truth.polyp.items() if k in keys}, dices, got)
        out.update({f"{name}[{origin}]": v for name, v in part.items() if not math.isnan(v)})
    return out


def _mask_figures(
    polyp: dict[tuple[str, str], int], dices: dict[tuple[str, str], float], got: set[Any]
) -> dict[str, float]:
    """Mean Dice over the polyp frames that got a mask, coverage of the polyp frames, share of the polyp-free
    frames that got a mask (nan where a figure has no frames)."""
    d = [v for k, v in dices.items() if polyp.get(k) == 1]
    n_true = sum(1 for v in polyp.values() if v == 1)
    n_free = sum(1 for v in polyp.values() if v == 0)
    covered = sum(1 for k, v in polyp.items() if v == 1 and k in got)
    false_pos = sum(1 for k, v in polyp.items() if v == 0 and k in got)
    return {
        "dice": float(np.mean(d)) if d else float("nan"),
        "coverage": covered / n_true if n_true else float("nan"),
        "masks_on_polyp_free": false_pos / n_free if n_free else float("nan"),
    }


def score_run(run: RunFolder, archive: str | Path) -> dict[str, dict[str, Any]]:
    """Score every finished stage of ``run`` that truth can score. Empty when the archive has no truth."""
    truth = load_truth(archive)
    if truth is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    ledger = run.ledger()["stages"]

    def done(stage: str) -> bool:
        return ledger.get(stage, {}).get("status") == "done"

    if done("ingest"):
        exams = tables.read_run(run, "ingest/exams").num_rows
        out["ingest"] = {
            "exams": exams,
            "exams_in_truth": len(truth.exams),
            "images": tables.read_run(run, "ingest/images").num_rows,
        }
    if done("extract"):
        out["extract"] = score_labels(truth, run.output("extract", "labels"))
    if done("mil"):
        out["mil"] = score_mil(truth, run.output("mil", "image_scores"))
    if done("prompt_seg"):
        out["prompt_seg"] = score_pseudo_masks(truth, run, run.output("prompt_seg", "pseudo_labels"))
    return out
