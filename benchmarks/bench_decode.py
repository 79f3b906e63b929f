"""Mask-decoder time per image against ``decode_batch`` (prompts per decoder call), with the consensus
selection's prompt count.

Each image of a PraNet-layout set gets ``--prompts`` boxes (its true box scaled by factors from 0.7 to 1.4 and
shifted), as many as consensus selection decodes per image; the image is embedded once, then the boxes are
decoded with every ``--batches`` value (0 = all in one call), ``--repeats`` times each. Printed: the median
seconds per image for each value and its ratio to the one-call baseline, and the largest share of mask pixels
that differ from the one-call masks (the result must not depend on the batching).

Usage::

    python benchmarks/bench_decode.py --set Kvasir --images 10 --prompts 24 --batches 0 1 2 4 8 --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from public_archive import shared_data_root

from endoked.boxes import box_of_mask
from endoked.prompt_seg import create_segmenter


def prompts_for(box: np.ndarray, n: int, size_hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """``n`` boxes around ``box``: scaled by 0.7-1.4 about a jittered centre, clipped to the image."""
    h, w = size_hw
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    out = []
    for s in np.linspace(0.7, 1.4, n):
        dx, dy = rng.normal(0, 0.05 * bw), rng.normal(0, 0.05 * bh)
        out.append(
            [
                max(0, cx + dx - s * bw / 2),
                max(0, cy + dy - s * bh / 2),
                min(w, cx + dx + s * bw / 2),
                min(h, cy + dy + s * bh / 2),
            ]
        )
    return np.asarray(out, np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="public data root (default: shared data)")
    ap.add_argument("--set", default="Kvasir")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--batches", type=int, nargs="+", default=[0, 1, 2, 4, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--segmenter", default="litemedsam")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = (args.data or shared_data_root()) / "polyp" / "TestDataset" / args.set
    if not (root / "images").is_dir():
        print(f"no PraNet-layout set at {root}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    seg = create_segmenter(args.segmenter, device="cpu", decode_batch=0)
    times: dict[int, list[float]] = {b: [] for b in args.batches}
    worst_diff = {b: 0.0 for b in args.batches}
    for img_path in sorted((root / "images").iterdir())[: args.images]:
        mask = cv2.imread(str(root / "masks" / f"{img_path.stem}.png"), cv2.IMREAD_GRAYSCALE) > 127
        box = box_of_mask(mask)
        if box is None:
            continue
        image = cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2RGB)
        seg.set_image(image)
        boxes = prompts_for(box, args.prompts, mask.shape, rng)
        seg.decode_batch = None
        ref, _ = seg.predict(boxes)  # the one-call masks every setting is compared with (and a warm-up)
        for b in args.batches:
            seg.decode_batch = b or None
            runs = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                masks, _ = seg.predict(boxes)
                runs.append(time.perf_counter() - t)
            times[b].append(statistics.median(runs))
            worst_diff[b] = max(worst_diff[b], float((masks != ref).mean()))
        seg.reset_image()
    base = statistics.median(times[0]) if times.get(0) else None
    print(
        f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}; {args.segmenter}, {len(times[args.batches[0]])} {args.set} images, "
        f"{args.prompts} prompts each, median of {args.repeats} runs per image, then median over images\n"
    )
    print("| decode_batch | s per image (decoding) | vs one call | max share of mask pixels differing |")
    print("|---|---|---|---|")
    for b in args.batches:
        med = statistics.median(times[b])
        ratio = f"{base / med:.2f}x faster" if base else "-"
        print(f"| {b or 'all'} | {med:.2f} | {ratio} | {worst_diff[b]:.2e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
