"""Synthetic archive generation speed (frames/s) with one and two worker processes, and report speed.

Usage:
    python benchmarks/bench_synth.py --exams 300 --size 256 --repeats 3 [--workers 1 2] [--reports 10000]

Each setting is run ``--repeats`` times into a fresh temporary folder; the table shows medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from endoked.synth.api import SynthConfig, generate_archive, synth_reports


def bench_archive(exams: int, size: int, workers: int, repeats: int) -> tuple[float, int]:
    """Median frames/s over ``repeats`` runs, and the frame count."""
    rates, frames = [], 0
    for r in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
            cfg = SynthConfig(exams=exams, size=size, workers=workers, seed=r)
            t0 = time.perf_counter()
            s = generate_archive(Path(tmp) / "a", cfg, progress=False)
            rates.append(s.images / (time.perf_counter() - t0))
            frames = s.images
    return statistics.median(rates), frames


def bench_reports(n: int, repeats: int) -> float:
    """Median reports/s of :func:`synth_reports`."""
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        synth_reports(n, seed=r)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exams", type=int, default=300)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reports", type=int, default=10000, help="Reports for the text-only benchmark (0: skip).")
    args = ap.parse_args()
    print(f"| setting | frames (or reports) | median rate ({args.repeats} runs) |")
    print("|---|---|---|")
    for w in args.workers:
        rate, frames = bench_archive(args.exams, args.size, w, args.repeats)
        print(f"| archive, {args.size} px, {w} worker(s) | {frames} | {rate:.0f} frames/s |", flush=True)
    if args.reports:
        print(f"| synth_reports | {args.reports} | {bench_reports(args.reports, args.repeats):.0f} reports/s |")


if __name__ == "__main__":
    main()
