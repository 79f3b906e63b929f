"""How well each ranking of candidate prompts picks the right mask: the measurement behind prompt_seg's
``selection: consensus`` default and its ``min_rank`` filter.

Needs a run folder whose cam stage finished with ``cam.save_cams: true`` and an archive with
``truth/images.csv``. For every truly-polyp image that has a saved CAM (boxed or dropped by the box
filters), every candidate prompt of :func:`endoked.prompt_seg.refine.cam_component_boxes` (plus the cam
stage's boxes) is decoded with LiteMedSAM; each ranking rule then picks one mask per image, and the script
prints the oracle (best candidate), the mean Dice each rule reaches over all images and over its most
confident half, and a sweep of the rank threshold (``score + consensus``) with and without an area cap.

Usage::

    python benchmarks/bench_selection.py --run RUN --archive ARCHIVE [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
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
from endoked.prompt_seg.refine import cam_component_boxes, clean_mask, mask_consensus, soft_iou
from endoked.runfolder import RunFolder
from endoked.scoring import dice

Rule = Callable[[dict[str, float]], float]
RULES: dict[str, Rule] = {
    "segmenter score": lambda c: c["score"],
    "score/2 + CAM agreement/2 (box selection's)": lambda c: 0.5 * c["score"] + 0.5 * c["agree"],
    "consensus": lambda c: c["consensus"],
    "score + consensus (default)": lambda c: c["score"] + c["consensus"],
    "score + consensus + CAM agreement": lambda c: c["score"] + c["consensus"] + c["agree"],
}


def candidates(run: RunFolder, archive: Path, thresholds: list[float], scales: list[float]) -> list[list[dict]]:
    with open(archive / "truth" / "images.csv", encoding="utf-8") as fh:
        truth = {(r["exam_id"], r["image"]): r for r in csv.DictReader(fh)}
    paths = {(r["exam_id"], r["image"]): r["path"] for r in read_parquet(run.output("ingest", "images")).to_pylist()}
    boxes: dict[tuple[str, str], list[list[float]]] = {}
    for b in read_parquet(run.output("cam", "boxes")).to_pylist():
        boxes.setdefault((b["exam_id"], b["image"]), []).append([b["x0"], b["y0"], b["x1"], b["y1"]])
    seg = LiteMedSamSegmenter(device="cpu")
    out: list[list[dict]] = []
    npz_cache: dict[str, Any] = {}
    for row in read_parquet(run.output("cam", "cams")).to_pylist():
        key = (row["exam_id"], row["image"])
        t = truth.get(key)
        if t is None or t["polyp"] != "1" or not row["file"]:
            continue
        if row["file"] not in npz_cache:
            npz_cache.clear()
            npz_cache[row["file"]] = dict(np.load(run.abs(row["file"])))
        img = read_rgb(paths[key])
        gt = cv2.imread(str(archive / t["mask"]), cv2.IMREAD_GRAYSCALE) > 127
        cam = resize_map(npz_cache[row["file"]][row["key"]].astype(np.float32) / 255.0, img.shape[:2])
        cands = np.concatenate(
            [np.asarray(boxes.get(key, []), np.float32).reshape(-1, 4), cam_component_boxes(cam, thresholds, scales)]
        )
        if len(cands) == 0:
            out.append([])
            continue
        seg.set_image(img)
        masks, scores = seg.predict(cands)
        masks = [clean_mask(m) for m in masks]
        cons = mask_consensus(masks)
        out.append(
            [
                {
                    "score": float(s),
                    "consensus": float(c),
                    "agree": soft_iou(cam, m),
                    "area": float(m.mean()),
                    "dice": dice(m, gt),
                }
                for m, s, c in zip(masks, scores, cons, strict=True)
            ]
        )
        print(f"\r{len(out)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--archive", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--thresholds", default="0.2,0.3,0.4,0.5,0.65,0.8")
    ap.add_argument("--scales", default="0.8,1.0,1.25")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    per_image = candidates(
        RunFolder(args.run),
        args.archive,
        [float(v) for v in args.thresholds.split(",")],
        [float(v) for v in args.scales.split(",")],
    )
    n = len(per_image)
    with_cands = [c for c in per_image if c]
    print(
        f"{n} polyp images with a CAM, {len(with_cands)} with candidates, "
        f"{np.mean([len(c) for c in with_cands]):.1f} candidates per image\n"
    )
    print("| selection | mean Dice, all images | most confident half |\n|---|---|---|")
    print(f"| oracle (best candidate) | {np.sum([max(x['dice'] for x in c) for c in with_cands]) / n:.3f} | |")
    for name, rule in RULES.items():
        best = [max(c, key=rule) for c in with_cands]
        d = np.array([b["dice"] for b in best])
        order = np.argsort([-rule(b) for b in best])
        print(f"| {name} | {d.sum() / n:.3f} | {d[order[: len(order) // 2]].mean():.3f} |")
    rule = RULES["score + consensus (default)"]
    best = [max(c, key=rule) for c in with_cands]
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
