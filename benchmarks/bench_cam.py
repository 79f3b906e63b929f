"""cam + prompt_seg benchmark: pseudo-mask quality of the weak chain against an archive's truth.

Needs a run folder where ingest and mil have finished (e.g. the one ``benchmarks/bench_mil.py --out DIR``
leaves), or ``--truth-selection`` to write a perfect MIL selection from the truth (polyp frames = 1,
frames of polyp-free exams = 0), which isolates the cam + prompt_seg steps. Then, for each variant
(``NAME:key=value,key=value`` config overrides), the cam and prompt_seg stages run in a copy of the run
folder and their outputs are scored against ``truth/images.csv``:

- box IoU: best IoU of the image's first CAM box with the boxes of the true mask's components;
- CAM peak on the polyp: share of the polyp frames with a saved CAM whose maximum lies on the true mask
  (dilated by 2 % of the frame's longer side), the point a peak prompt is centred on;
- pseudo masks: mean Dice over the polyp frames that received one, coverage (share of selected-positive
  polyp frames that received one, and share of all polyp frames), and pseudo masks on truly polyp-free
  frames (count and share of all polyp-free frames);
- throughput: images/s of the cam stage (CAM inference, after training) and of prompt_seg.

The benchmark resumes: a variant folder of an earlier call on the same ingest and mil keeps the stages it
finished with the same config, and ``results.json`` keeps the variants of earlier calls, so a ``--cam-only``
screen can be followed by prompt_seg on its best variants alone (``--fresh`` starts every variant over).

Usage::

    python benchmarks/public_archive.py --out /tmp/pub --exams 300 --seed 0
    python benchmarks/bench_mil.py --archive /tmp/pub --out /tmp/bench_mil --profile cpu-small
    python benchmarks/bench_cam.py --archive /tmp/pub --run /tmp/bench_mil --out /tmp/bench_cam \
        --variant "naive:cam.levels=[4],cam.head=linear,cam.pool=gap,prompt_seg.refine_iters=0" --variant "default:"
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from endoked import tables
from endoked.boxes import box_iou, mask_components_boxes
from endoked.cam.stage import STAGE as CAM_STAGE
from endoked.config import resolve_config
from endoked.imaging import resize_map
from endoked.io import read_parquet
from endoked.pipeline import run_stage
from endoked.prompt_seg.stage import STAGE as SEG_STAGE
from endoked.prompt_seg.stage import CamStore
from endoked.runfolder import RunFolder

logger = logging.getLogger("endoked.benchmarks.cam")


def load_truth_rows(archive: Path) -> dict[tuple[str, str], dict[str, str]]:
    """``(exam_id, image) -> truth row`` from ``truth/images.csv``."""
    with open(archive / "truth" / "images.csv", encoding="utf-8") as fh:
        return {(r["exam_id"], r["image"]): r for r in csv.DictReader(fh)}


def truth_selection(archive: Path) -> list[dict[str, Any]]:
    """A perfect MIL selection: polyp frames label 1, frames of polyp-free exams label 0."""
    truth = load_truth_rows(archive)
    with open(archive / "truth" / "exams.jsonl", encoding="utf-8") as fh:
        absent = {json.loads(line)["id"] for line in fh if line.strip() and json.loads(line)["polyp"] == "absent"}
    out = []
    for (exam_id, image), r in sorted(truth.items()):
        if r["polyp"] == "1":
            out.append({"exam_id": exam_id, "image": image, "label": 1, "score": 1.0, "by": "truth"})
        elif exam_id in absent:
            out.append({"exam_id": exam_id, "image": image, "label": 0, "score": 0.0, "by": "truth"})
    return out


def _gt(archive: Path, row: dict[str, str]) -> np.ndarray:
    m = cv2.imread(str(archive / row["mask"]), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise FileNotFoundError(archive / row["mask"])
    return m > 127


def peak_on_polyp(archive: Path, run: RunFolder, truth: dict[tuple[str, str], dict[str, str]]) -> float | None:
    """Share of the polyp frames with a saved CAM whose maximum (the CAM resized to the frame) lies on the true
    mask dilated by 2 % of the frame's longer side; None when the run saved no CAMs."""
    cams = CamStore(run)
    hits: list[bool] = []
    for (exam_id, image), t in sorted(truth.items()):
        cam = cams.get(exam_id, image) if t["polyp"] == "1" else None
        if cam is None:
            continue
        g = _gt(archive, t)
        h, w = g.shape
        k = max(3, round(0.02 * max(h, w)) | 1)
        near = cv2.dilate(g.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
        y, x = np.unravel_index(int(np.argmax(resize_map(cam, (h, w)))), (h, w))
        hits.append(bool(near[y, x]))
    return float(np.mean(hits)) if hits else None


def score_variant(archive: Path, run: RunFolder, sweep: list[float]) -> dict[str, Any]:
    """Figures of one finished cam + prompt_seg run against the truth; with ``sweep``, also the pseudo-mask
    figures when only masks with ``cam_agreement >= t`` are kept, for each ``t``."""
    truth = load_truth_rows(archive)
    selection = read_parquet(run.output("mil", "selection")).to_pylist()
    sel_pos = {(r["exam_id"], r["image"]) for r in selection if int(r["label"]) == 1}
    boxes = read_parquet(run.output("cam", "boxes")).to_pylist()
    first_box: dict[tuple[str, str], np.ndarray] = {}
    for b in boxes:
        key = (b["exam_id"], b["image"])
        if b["box_id"] == 0:
            first_box[key] = np.array([b["x0"], b["y0"], b["x1"], b["y1"]])
    ious = []
    for key, box in first_box.items():
        t = truth.get(key)
        if t is not None and t["polyp"] == "1":
            gb = mask_components_boxes(_gt(archive, t), 50)
            ious.append(float(box_iou(box[None], gb).max()) if len(gb) else 0.0)
    seg_done = (run.entry("prompt_seg") or {}).get("status") == "done"
    pseudo = read_parquet(run.output("prompt_seg", "pseudo_labels")).to_pylist() if seg_done else []
    per_mask: list[tuple[float, float | None]] = []  # (cam_agreement, dice or None on polyp-free frames)
    origin_dices: dict[str, list[float]] = {}
    for p in pseudo:
        t = truth[(p["exam_id"], p["image"])]
        pred = cv2.imread(str(run.abs(p["mask"])), cv2.IMREAD_GRAYSCALE) > 127
        agreement = p["cam_agreement"] if p["cam_agreement"] is not None else 1.0
        if t["polyp"] == "1":
            g = _gt(archive, t)
            dice = float(2 * (pred & g).sum() / max(pred.sum() + g.sum(), 1))
            per_mask.append((agreement, dice))
            origin_dices.setdefault(t.get("origin", "?"), []).append(dice)
        else:
            per_mask.append((agreement, None))
    dices = [d for _, d in per_mask if d is not None]
    on_free = sum(d is None for _, d in per_mask)
    n_polyp = sum(r["polyp"] == "1" for r in truth.values())
    n_free = len(truth) - n_polyp
    n_sel_polyp = sum(truth[k]["polyp"] == "1" for k in sel_pos if k in truth)
    dropped = read_parquet(run.output("cam", "dropped")).to_pylist()
    reasons: dict[str, int] = {}
    for r in dropped:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    boxed_free = sum(truth[k]["polyp"] == "0" for k in first_box if k in truth)
    sweep_rows = []
    for t in sweep:
        kept = [d for a, d in per_mask if a >= t]
        kd = [d for d in kept if d is not None]
        sweep_rows.append(
            {
                "min_cam_agreement": t,
                "pseudo_on_polyp_frames": len(kd),
                "mean_dice": float(np.mean(kd)) if kd else None,
                "coverage_of_all_polyp_frames": len(kd) / n_polyp if n_polyp else None,
                "false_mask_rate": (len(kept) - len(kd)) / n_free if n_free else None,
            }
        )
    return {
        "agreement_sweep": sweep_rows,
        "selected_positive": len(sel_pos),
        "selected_positive_polyp_frames": n_sel_polyp,
        "images_with_boxes": len(first_box),
        "box_iou_mean": float(np.mean(ious)) if ious else None,
        "box_iou_ge_0.5": float(np.mean(np.array(ious) >= 0.5)) if ious else None,
        "cam_peak_on_polyp": peak_on_polyp(archive, run, truth),
        "cam_drop_reasons": reasons,
        "boxes_on_polyp_free_frames": boxed_free,
        "pseudo_masks": len(pseudo),
        "pseudo_on_polyp_frames": len(dices),
        "mean_dice": float(np.mean(dices)) if dices else None,
        "dice_ge_0.8": float(np.mean(np.array(dices) >= 0.8)) if dices else None,
        "coverage_of_selected": len(dices) / n_sel_polyp if n_sel_polyp else None,
        "coverage_of_all_polyp_frames": len(dices) / n_polyp if n_polyp else None,
        "pseudo_on_polyp_free_frames": on_free,
        "by_origin": {
            o: {
                "mean_dice": float(np.mean(d)),
                "coverage": len(d) / max(1, sum(r["polyp"] == "1" and r.get("origin") == o for r in truth.values())),
            }
            for o, d in sorted(origin_dices.items())
        },
        "false_mask_rate": on_free / n_free if n_free else None,
    }


def run_variant(
    archive: Path,
    base: Path,
    out: Path,
    overrides: list[str],
    profile: str,
    sweep: list[float],
    cam_only: bool = False,
    fresh: bool = False,
) -> dict[str, Any]:
    """Copy the run folder's ingest + mil, run cam and (unless ``cam_only``) prompt_seg with ``overrides``,
    score.

    A variant folder left by an earlier call on the same ingest and mil is kept: the stages it finished with
    the same config are skipped (their fingerprints match), so an interrupted benchmark, or a ``--cam-only``
    screen followed by prompt_seg on its best variants, redoes nothing. ``fresh`` starts it over.
    """
    base_run = RunFolder(base)
    if out.exists() and (fresh or not _same_upstream(base_run, RunFolder(out))):
        shutil.rmtree(out)
    if not out.exists():
        shutil.copytree(base, out, ignore=shutil.ignore_patterns("cam", "prompt_seg", "seg", "eval", "report*"))
        for stage in ("cam", "prompt_seg", "seg", "eval"):
            RunFolder(out).forget(stage, remove_outputs=True)
    run = RunFolder(out)
    cfg = resolve_config(profile, overrides=[f"ingest.archive={archive / 'manifest.jsonl'}", *overrides])
    t0 = time.perf_counter()
    cam_status, _ = run_stage(run, cfg, CAM_STAGE, progress=False)
    if not cam_only:
        run_stage(run, cfg, SEG_STAGE, progress=False)
    figures = score_variant(archive, run, sweep)
    cam_entry = run.entry("cam") or {}
    seg_entry = run.entry("prompt_seg") or {}
    n_cam = (cam_entry.get("counts") or {}).get("images", 0)
    n_seg = (seg_entry.get("counts") or {}).get("images", 0) if seg_entry.get("status") == "done" else 0
    cam_s, seg_s = cam_entry.get("seconds"), seg_entry.get("seconds") if n_seg else None
    figures.update(
        {
            "cam_seconds": cam_s,
            "prompt_seg_seconds": seg_s,
            "cam_counts": cam_entry.get("counts"),
            "prompt_seg_images_per_s": n_seg / seg_s if n_seg and seg_s else None,
            "cam_images_per_s_incl_training": n_cam / cam_s if n_cam and cam_s else None,
            "this_call_seconds": round(time.perf_counter() - t0, 1),
            "cam_reused": cam_status == "skipped",
        }
    )
    return figures


def _same_upstream(base: RunFolder, out: RunFolder) -> bool:
    """Whether ``out`` was made from ``base``'s ingest and mil (same fingerprints and outputs)."""
    for stage in ("ingest", "mil"):
        a, b = base.entry(stage) or {}, out.entry(stage) or {}
        if a.get("fingerprint") != b.get("fingerprint") or a.get("outputs") != b.get("outputs"):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archive", type=Path, required=True)
    p.add_argument("--run", type=Path, required=True, help="run folder with ingest (and mil) finished")
    p.add_argument("--out", type=Path, required=True, help="folder for the variants' run folders and results")
    p.add_argument("--profile", default="cpu-small")
    p.add_argument("--truth-selection", action="store_true", help="replace mil/selection with the truth's")
    p.add_argument("--variant", action="append", default=[], help="NAME:key=value,key=value (repeatable)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cam-only", action="store_true", help="run and score the cam stage only (no prompt_seg)")
    p.add_argument("--fresh", action="store_true", help="start every variant over (default: reuse finished stages)")
    p.add_argument("--agreement-sweep", default="", help="comma-separated cam_agreement thresholds to score")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.run
    if args.truth_selection:
        base = args.out / "base"
        if base.exists():
            shutil.rmtree(base)
        shutil.copytree(args.run, base, ignore=shutil.ignore_patterns("mil", "cam", "prompt_seg", "seg", "eval"))
        run = RunFolder(base)
        path = run.stage_dir("mil") / "selection.parquet"
        tables.write(path, "mil/selection", truth_selection(args.archive))
        run.mark_running("mil", "truth-selection", {"archive": str(args.archive)})
        run.mark_done("mil", {"selection": run.rel(path)}, {}, 0.0)
    sweep = [float(v) for v in args.agreement_sweep.split(",") if v.strip()]
    results_path = args.out / "results.json"  # variants of earlier calls stay; this call's replace theirs
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    for spec in args.variant or ["default:"]:
        name, _, rest = spec.partition(":")
        overrides = [s for s in rest.split(",") if s] if rest else []
        # Lists in overrides ("cam.levels=[3,4]") hold commas: re-join pieces without "=".
        merged: list[str] = []
        for piece in overrides:
            if "=" in piece or not merged:
                merged.append(piece)
            else:
                merged[-1] += "," + piece
        logger.info("variant %s: %s", name, merged)
        figures = run_variant(
            args.archive, base, args.out / name, merged, args.profile, sweep, args.cam_only, args.fresh
        )
        results[name] = {"overrides": merged, **figures}
        logger.info("variant %s: %s", name, json.dumps(results[name], default=str))
        tmp = results_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2, default=str))
        tmp.replace(results_path)
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
