"""Ingest throughput (images/s) and peak memory on a synthetic archive.

Usage:
    python benchmarks/bench_ingest.py --images 20000 --repeats 3 [--archive DIR] [--workdir DIR]

Builds (once, cached in --workdir) a synthetic archive with about ``--images`` frames, then runs
``ingest_archive`` ``--repeats`` times per setting in a fresh child process each (so peak RSS is the
ingest's own), and prints medians as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time, shutil
from endoked.ingest.api import ingest_archive
from endoked.ingest.config import IngestConfig
archive, out, workers, verify = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
shutil.rmtree(out, ignore_errors=True)
t0 = time.perf_counter()
s = ingest_archive(archive, out, IngestConfig(workers=workers, verify=verify), progress=False)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "images": s.images_ok, "exams": s.exams_ok,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def build_archive(workdir: Path, n_images: int, seed: int = 0) -> Path:
    """A synthetic archive with about ``n_images`` frames (cached by size and seed)."""
    from endoked.synth.api import generate_archive
    from endoked.synth.config import SynthConfig

    archive = workdir / f"synth-{n_images}-{seed}"
    if (archive / "manifest.jsonl").is_file():
        return archive
    per_exam = 7  # mean of the default images-per-exam range
    cfg = SynthConfig(exams=max(1, n_images // per_exam), seed=seed, size=256, workers=2)
    t0 = time.perf_counter()
    generate_archive(archive, cfg)
    print(f"built {archive} in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return archive


def run_once(archive: Path, out: Path, workers: int, verify: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(archive), str(out), str(workers), verify],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--archive", type=Path, default=None, help="Existing archive instead of a synthetic one.")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "endoked-bench")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    archive = args.archive or build_archive(args.workdir, args.images)
    rows = []
    for workers, verify in ((1, "decode"), (2, "decode"), (2, "header")):
        runs = [run_once(archive, args.workdir / "ingest-out", workers, verify) for _ in range(args.repeats)]
        secs = statistics.median(r["seconds"] for r in runs)
        n = runs[0]["images"]
        rows.append(
            (
                workers,
                verify,
                n,
                secs,
                n / secs,
                max(r["peak_rss_mb"] for r in runs),
                max(r["children_peak_rss_mb"] for r in runs),
            )
        )
    base = rows[0][4]
    print("| workers | verify | images | median s | images/s | vs 1 worker | peak RSS MB (main / worker) |")
    print("|---|---|---|---|---|---|---|")
    for w, v, n, s, ips, rss, crss in rows:
        print(f"| {w} | {v} | {n} | {s:.1f} | {ips:.0f} | {ips / base:.2f}x | {rss:.0f} / {crss:.0f} |")


if __name__ == "__main__":
    main()
