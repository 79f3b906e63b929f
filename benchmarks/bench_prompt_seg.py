"""Box → mask quality and speed of the prompted segmenters, given the true box of every polyp.

For each image of a PraNet-layout set (``<data>/polyp/TestDataset/<set>/{images,masks}``) the boxes of the
true mask's connected components (≥ ``--min-area`` px) prompt the segmenter; the union of the masks is
scored against the true mask (per-image Dice, then the mean). This is the ceiling of the box → mask step.
Also reported: the box itself as a mask, and the encoder/decoder time per image.

Usage::

    python benchmarks/bench_prompt_seg.py --sets Kvasir CVC-ClinicDB --segmenters litemedsam ellipse box \
        --threads 2 [--limit 20] [--bf16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from endoked.boxes import mask_components_boxes
from endoked.prompt_seg import create_segmenter
from endoked.scoring import dice

REPO_ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("endoked.benchmarks.prompt_seg")


def shared_data_root() -> Path:
    """``$ENDOKED_SHARED_DATA`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("ENDOKED_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def load_set(root: Path, limit: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(stem, image RGB uint8, mask bool)`` of a PraNet-layout set, sorted by name."""
    out = []
    for img_path in sorted((root / "images").iterdir())[:limit]:
        mask_path = root / "masks" / (img_path.stem + ".png")
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        gt = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if img is None or gt is None:
            logger.warning("skipping %s (image or mask unreadable)", img_path.name)
            continue
        out.append((img_path.stem, cv2.cvtColor(img, cv2.COLOR_BGR2RGB), gt > 127))
    return out


def box_masks(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The boxes themselves as a union mask."""
    out = np.zeros(size, dtype=bool)
    for x0, y0, x1, y1 in boxes.astype(int):
        out[y0:y1, x0:x1] = True
    return out


def run_segmenter(
    name: str, data: list[tuple[str, np.ndarray, np.ndarray]], min_area: int, **kwargs: Any
) -> dict[str, Any]:
    """Mean Dice and timing of one segmenter over a set."""
    seg = None if name == "box" else create_segmenter(name, **kwargs)
    dices, t_embed, t_dec = [], [], []
    for _stem, img, gt in data:
        boxes = mask_components_boxes(gt, min_area)
        if name == "box":
            pred = box_masks(boxes, gt.shape)
        elif seg is not None:
            t0 = time.perf_counter()
            seg.set_image(img)
            t1 = time.perf_counter()
            masks, _ = seg.predict(boxes)
            t2 = time.perf_counter()
            t_embed.append(t1 - t0)
            t_dec.append(t2 - t1)
            pred = masks.any(0) if len(masks) else np.zeros(gt.shape, bool)
        dices.append(dice(pred, gt))
    res: dict[str, Any] = {"n": len(dices), "mean_dice": float(np.mean(dices))}
    if t_embed:
        res["median_set_image_s"] = statistics.median(t_embed)
        res["median_predict_s"] = statistics.median(t_dec)
        res["images_per_s"] = 1.0 / statistics.median([a + b for a, b in zip(t_embed, t_dec, strict=True)])
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=None, help="public data root (default: shared data)")
    p.add_argument("--sets", nargs="+", default=["Kvasir", "CVC-ClinicDB"])
    p.add_argument("--segmenters", nargs="+", default=["litemedsam", "ellipse", "box"])
    p.add_argument("--limit", type=int, default=None, help="first N images of each set")
    p.add_argument("--min-area", type=int, default=50, help="smallest true component that gets a box (px)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--bf16", action="store_true", help="litemedsam encoder under bf16 autocast")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    root = (args.data or shared_data_root()) / "polyp" / "TestDataset"
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "bf16": args.bf16, "sets": {}}
    for set_name in args.sets:
        data = load_set(root / set_name, args.limit)
        results["sets"][set_name] = {}
        for name in args.segmenters:
            kw: dict[str, Any] = {}
            if name == "litemedsam":
                kw = {"device": "cpu", "bf16": args.bf16, "channels_last": not args.no_channels_last}
            res = run_segmenter(name, data, args.min_area, **kw)
            results["sets"][set_name][name] = res
            logger.info("%s %s: %s", set_name, name, json.dumps(res))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
