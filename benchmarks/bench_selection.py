"""How well each ranking of candidate prompts picks the right mask: the measurement behind prompt_seg's
``selection: consensus`` default and its ``min_rank`` filter.

Needs a run folder whose cam stage finished with ``cam.save_cams: true`` and an archive with
``truth/images.csv``. For every truly-polyp image that has a saved CAM (boxed or dropped by the box
filters), every candidate prompt of :func:`endoked.prompt_seg.refine.cam_component_boxes` (plus the cam
stage's boxes) is decoded with LiteMedSAM; each ranking rule then picks one mask per image, and the script
prints the oracle (best candidate), the mean Dice each rule reaches over all images and over its most
confident half, and a sweep of the rank threshold (``score + consensus``) with and without an area cap.

Options widen the candidates and the rules, to ask whether a better truth-free rule exists before building one:

- ``--peak-sizes 0.06,0.1,...`` adds square prompts of those sides centred on the CAM's three strongest peaks
  (:func:`endoked.prompt_seg.refine.cam_peak_boxes`); the stage's candidates stay the "stage" set, and the oracle
  and the default rule are given over both sets;
- ``--deletion`` runs the run's own CAM classifier (``cam/classifier.pt``) once more per candidate on the image with
  the candidate's mask inpainted away (OpenCV Telea, dilated by 2 px at the classifier's input size): the drop of
  the polyp logit says how much of what the classifier saw the mask holds;
- every candidate also gets its CAM contrast (mean CAM inside the mask minus in a ring around it, 0.3 × the mask's
  equivalent side wide) and SAM's stability score (IoU of its low-resolution logits thresholded at +1 and at -1);
- ``--frames N`` scores a random sample of ``N`` polyp frames (``--seed``), ``--json OUT`` keeps every candidate's
  figures so that further rules can be replayed without decoding again.

Usage::

    python benchmarks/bench_selection.py --run RUN --archive ARCHIVE [--threads 2]
    python benchmarks/bench_selection.py --run RUN --archive ARCHIVE --frames 40 \
        --peak-sizes 0.06,0.1,0.15,0.22,0.33,0.5 --deletion --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from endoked.imaging import read_rgb, resize_map
from endoked.io import read_parquet
from endoked.prompt_seg.litemedsam import LiteMedSamSegmenter
from endoked.prompt_seg.refine import cam_component_boxes, cam_peak_boxes, clean_mask, mask_consensus, soft_iou
from endoked.runfolder import RunFolder
from endoked.scoring import dice, load_truth

Rule = Callable[[dict[str, float]], float]
RULES: dict[str, Rule] = {
    "segmenter score": lambda c: c["score"],
    "score/2 + CAM agreement/2 (box selection's)": lambda c: 0.5 * c["score"] + 0.5 * c["agree"],
    "consensus": lambda c: c["consensus"],
    "score + consensus (default)": lambda c: c["score"] + c["consensus"],
    "score + consensus + CAM agreement": lambda c: c["score"] + c["consensus"] + c["agree"],
    "CAM contrast": lambda c: c["contrast"],
    "score + consensus + CAM contrast": lambda c: c["score"] + c["consensus"] + c["contrast"],
    "stability score": lambda c: c["stability"],
    "score + consensus + stability": lambda c: c["score"] + c["consensus"] + c["stability"],
    "consensus + stability": lambda c: c["consensus"] + c["stability"],
}
DELETION_RULES: dict[str, Rule] = {
    "deletion drop": lambda c: c["drop"],
    "deletion drop / sqrt(area)": lambda c: c["drop"] / np.sqrt(c["area"] + 1e-3),
    "score + consensus + 0.05 × relative drop": lambda c: c["score"] + c["consensus"] + 0.05 * c["rel_drop"],
}


def _contrast(cam: np.ndarray, mask: np.ndarray) -> float:
    """Mean CAM inside ``mask`` minus in a ring around it (0.3 × the mask's equivalent side wide)."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    rad = max(2, int(0.3 * np.sqrt(area)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rad + 1, 2 * rad + 1))
    ring = (cv2.dilate(mask.astype(np.uint8), kernel) > 0) & ~mask
    return float(cam[mask].mean() - (cam[ring].mean() if ring.any() else 0.0))


class Deletion:
    """The run's CAM classifier on an image with a mask inpainted away: the polyp logit, before and after."""

    def __init__(self, run: RunFolder) -> None:
        from endoked.cam.config import CamConfig
        from endoked.cam.core import load_classifier

        self.net, self.normalize, cfg = load_classifier(run.root / "cam" / "classifier.pt", CamConfig())
        self.size = int(cfg.image_size)

    @torch.inference_mode()
    def _logits(self, images: list[np.ndarray]) -> np.ndarray:
        x = self.normalize(torch.stack([torch.from_numpy(a).permute(2, 0, 1).float().div_(255.0) for a in images]))
        return torch.cat([self.net(x[i : i + 16])[0].reshape(-1) for i in range(0, len(x), 16)]).numpy()

    def __call__(self, image: np.ndarray, masks: list[np.ndarray]) -> tuple[float, np.ndarray]:
        small = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        views = [small]
        for m in masks:
            mm = cv2.resize(m.astype(np.uint8), (self.size, self.size), interpolation=cv2.INTER_NEAREST)
            views.append(cv2.inpaint(small, cv2.dilate(mm, np.ones((5, 5), np.uint8)), 5, cv2.INPAINT_TELEA))
        logits = self._logits(views)
        return float(logits[0]), logits[1:]


def candidates(
    run: RunFolder,
    archive: Path,
    thresholds: list[float],
    scales: list[float],
    peak_sizes: list[float] | None = None,
    deletion: Deletion | None = None,
    frames: int | None = None,
    seed: int = 0,
) -> list[list[dict[str, Any]]]:
    """Every candidate of every scored polyp frame: its rule inputs, its source ("stage" or "peak") and its Dice."""
    truth = load_truth(archive)
    if truth is None:
        raise SystemExit(f"{archive} has no truth/images.csv to score against")
    paths = {(r["exam_id"], r["image"]): r["path"] for r in read_parquet(run.output("ingest", "images")).to_pylist()}
    boxes: dict[tuple[str, str], list[list[float]]] = {}
    for b in read_parquet(run.output("cam", "boxes")).to_pylist():
        boxes.setdefault((b["exam_id"], b["image"]), []).append([b["x0"], b["y0"], b["x1"], b["y1"]])
    rows = [
        r
        for r in read_parquet(run.output("cam", "cams")).to_pylist()
        if r["file"] and truth.polyp.get((r["exam_id"], r["image"])) == 1
    ]
    if frames is not None and frames < len(rows):
        pick = np.random.default_rng(seed).choice(len(rows), frames, replace=False)
        rows = [rows[i] for i in sorted(pick)]
    seg = LiteMedSamSegmenter(device="cpu")
    out: list[list[dict[str, Any]]] = []
    npz_cache: dict[str, Any] = {}
    for row in rows:
        key = (row["exam_id"], row["image"])
        if row["file"] not in npz_cache:
            npz_cache.clear()
            npz_cache[row["file"]] = dict(np.load(run.abs(row["file"])))
        img = read_rgb(paths[key])
        gt = truth.mask(*key)
        cam = resize_map(npz_cache[row["file"]][row["key"]].astype(np.float32) / 255.0, img.shape[:2])
        stage = np.concatenate(
            [np.asarray(boxes.get(key, []), np.float32).reshape(-1, 4), cam_component_boxes(cam, thresholds, scales)]
        )
        peaks = cam_peak_boxes(cam, peak_sizes, 3) if peak_sizes else np.zeros((0, 4), np.float32)
        cands = np.concatenate([stage, peaks])
        source = ["stage"] * len(stage) + ["peak"] * len(peaks)
        if len(cands) == 0:
            out.append([])
            continue
        seg.set_image(img)
        logits, scores = seg.predict_lowres(cands)  # upsampled below: exactly the masks seg.predict returns
        masks = [clean_mask(m) for m in seg.upsample_logits(logits)]
        # SAM's stability score: IoU of the mask thresholded at logit +1 and at -1 (the first lies in the second)
        stability = [float((lg > 1).sum() / max((lg > -1).sum(), 1)) for lg in logits]
        cons_all = mask_consensus(masks)
        cons_stage = mask_consensus(masks[: len(stage)]) if len(stage) else np.zeros(0, np.float32)
        logit, deleted = deletion(img, masks) if deletion is not None else (float("nan"), None)
        recs = []
        for i, (m, s) in enumerate(zip(masks, scores, strict=True)):
            rec: dict[str, Any] = {
                "source": source[i],
                "score": float(s),
                "consensus": float(cons_stage[i]) if i < len(stage) else float("nan"),
                "consensus_all": float(cons_all[i]),
                "agree": soft_iou(cam, m),
                "contrast": _contrast(cam, m),
                "stability": stability[i],
                "area": float(m.mean()),
                "dice": dice(m, gt),
                "origin": truth.origin.get(key, ""),
            }
            if deleted is not None:
                rec["drop"] = logit - float(deleted[i])
                rec["rel_drop"] = rec["drop"] / max(abs(logit), 1.0)
            recs.append(rec)
        out.append(recs)
        print(f"\r{len(out)} / {len(rows)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def _pick(cands: list[dict[str, Any]], rule: Rule, stage_only: bool) -> dict[str, Any]:
    pool = [c for c in cands if c["source"] == "stage"] if stage_only else cands
    return max(pool or cands, key=rule)


def rule_table(per_image: list[list[dict[str, Any]]], deletion: bool) -> list[dict[str, Any]]:
    """Per rule: mean Dice over all scored frames (none picked counts 0), over its most confident half, and on the
    CVC-ClinicDB frames; rules of the stage's candidates, then (with peak prompts) of all candidates."""
    n = len(per_image)
    with_cands = [c for c in per_image if c]
    has_peaks = any(x["source"] == "peak" for c in with_cands for x in c)
    rules: dict[str, Rule] = {**RULES, **(DELETION_RULES if deletion else {})}
    rows: list[dict[str, Any]] = []
    sets = [("stage candidates", True)] + ([("with peak prompts", False)] if has_peaks else [])
    for label, stage_only in sets:
        oracle = [_pick(c, lambda x: x["dice"], stage_only) for c in with_cands]
        rows.append({"candidates": label, "rule": "oracle (best candidate)", **_figures(oracle, None, n)})
        for name, rule in rules.items():
            use: Rule = rule
            if not stage_only and "consensus" in name:

                def use(x: dict[str, Any], rule: Rule = rule) -> float:
                    return rule({**x, "consensus": x["consensus_all"]})

            best = [_pick(c, use, stage_only) for c in with_cands]
            rows.append({"candidates": label, "rule": name, **_figures(best, use, n)})
    return rows


def _figures(best: list[dict[str, Any]], rule: Rule | None, n: int) -> dict[str, float]:
    d = np.array([b["dice"] for b in best])
    clinic = np.array([b["dice"] for b in best if "clinic" in str(b["origin"]).lower()])
    out = {"mean_dice": float(d.sum() / n), "clinicdb_dice": float(clinic.mean()) if len(clinic) else float("nan")}
    if rule is not None:
        order = np.argsort([-rule(b) for b in best])
        out["confident_half_dice"] = float(d[order[: len(order) // 2]].mean())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--archive", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--thresholds", default="0.2,0.3,0.4,0.5,0.65,0.8")
    ap.add_argument("--scales", default="0.8,1.0,1.25")
    ap.add_argument("--peak-sizes", default="", help="sides of peak prompts (share of the shorter side)")
    ap.add_argument("--deletion", action="store_true", help="score each candidate by the CAM classifier's logit drop")
    ap.add_argument("--frames", type=int, default=None, help="score a random sample of this many polyp frames")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write every candidate's figures and the rule table here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = RunFolder(args.run)
    per_image = candidates(
        run,
        args.archive,
        [float(v) for v in args.thresholds.split(",")],
        [float(v) for v in args.scales.split(",")],
        [float(v) for v in args.peak_sizes.split(",") if v.strip()],
        Deletion(run) if args.deletion else None,
        args.frames,
        args.seed,
    )
    n = len(per_image)
    with_cands = [c for c in per_image if c]
    print(
        f"{n} polyp images with a CAM, {len(with_cands)} with candidates, "
        f"{np.mean([len(c) for c in with_cands]):.1f} candidates per image\n"
    )
    table = rule_table(per_image, args.deletion)
    print("| candidates | selection | mean Dice, all images | most confident half | ClinicDB frames |")
    print("|---|---|---|---|---|")
    for r in table:
        half = f"{r['confident_half_dice']:.3f}" if "confident_half_dice" in r else ""
        print(f"| {r['candidates']} | {r['rule']} | {r['mean_dice']:.3f} | {half} | {r['clinicdb_dice']:.3f} |")
    rule = RULES["score + consensus (default)"]
    best = [_pick(c, rule, True) for c in with_cands]
    d = np.array([b["dice"] for b in best])
    rank = np.array([rule(b) for b in best])
    area = np.array([b["area"] for b in best])
    print("\n| min_rank | max_area_fraction | masks | coverage | mean Dice |\n|---|---|---|---|---|")
    for t in (1.1, 1.15, 1.2, 1.3):
        for a in (0.3, 0.5, 1.0):
            keep = (rank >= t) & (area <= a)
            print(
                f"| {t} | {a} | {keep.sum()} | {keep.sum() / n:.0%} | "
                f"{d[keep].mean() if keep.any() else float('nan'):.3f} |"
            )
    if args.json is not None:
        args.json.write_text(json.dumps({"rules": table, "candidates": per_image}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
