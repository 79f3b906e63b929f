"""Throughput of ``endoked eval``: N synthetic 500x500 (map, mask) PNG pairs scored with every metric.

Usage::

    python benchmarks/bench_eval.py --n 1000 --runs 3 [--workers 0] [--dir /tmp/endoked-bench-eval]

The pairs are generated once (seeded: elliptic polyps, blurred noisy maps) and reused by later runs.
Prints the wall time of each run (reading, resizing checks and all metrics) and the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from endoked.eval import EvalConfig, evaluate_folder


def make_pairs(root: Path, n: int, size: int = 500, seed: int = 0) -> tuple[Path, Path]:
    """Write ``n`` mask/map PNG pairs under ``root`` (skipped when already there)."""
    pred_dir, gt_dir = root / "pred", root / "masks"
    if gt_dir.is_dir() and len(list(gt_dir.glob("*.png"))) == n:
        return pred_dir, gt_dir
    pred_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cy, cx = rng.uniform(100, size - 100, 2)
        ry, rx = rng.uniform(20, 120, 2)
        gt = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        off = rng.integers(-10, 11, 2)
        prob = np.roll(gt, tuple(off), axis=(0, 1)) * rng.uniform(0.5, 1.0) + rng.normal(0, 0.1, gt.shape)
        Image.fromarray(gt.astype(np.uint8) * 255).save(gt_dir / f"{i:05d}.png")
        Image.fromarray(np.clip(prob * 255, 0, 255).astype(np.uint8)).save(pred_dir / f"{i:05d}.png")
    return pred_dir, gt_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="number of image pairs")
    parser.add_argument("--runs", type=int, default=3, help="timed runs")
    parser.add_argument("--workers", type=int, default=0, help="scoring processes (0 = CPU cores)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "endoked-bench-eval",
        help="where the synthetic pairs are written",
    )
    args = parser.parse_args()
    pred_dir, gt_dir = make_pairs(args.dir, args.n)
    config = EvalConfig(workers=args.workers)
    times = []
    for run in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        res = evaluate_folder(pred_dir, gt_dir, config)
        times.append(time.perf_counter() - t0)
        cpu = time.process_time() - c0  # this process only: meaningful with --workers 1
        print(
            f"run {run + 1}: {times[-1]:.1f} s wall, {cpu:.1f} s cpu in this process "
            f"({res.metrics['n']} images, mDice {res.metrics['mean_dice']:.3f})"
        )
    print(
        f"median {statistics.median(times):.1f} s for {args.n} images of 500x500, workers={args.workers} "
        f"(cpu_count={os.cpu_count()})"
    )


if __name__ == "__main__":
    main()
