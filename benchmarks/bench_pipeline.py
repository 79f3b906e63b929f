"""The report-supervised benchmark, end to end: build the public benchmark archive, run the whole pipeline
with a named profile, and print every stage's figures against the truth, meanDice on the public test sets,
wall time per stage and peak memory, as Markdown.

Usage:
    python benchmarks/bench_pipeline.py --out /tmp/endoked-pipeline --exams 300 --profile cpu-small \
        [--composition crops|full|heldout] [--seed 0]

The public data is found at ``$ENDOKED_SHARED_DATA`` or ``<repo>/../shared/data``. The run is an ordinary
``endoked run`` in a child process (so its peak RSS is measured); re-running the command resumes it.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from public_archive import ArchiveSpec, build_archive, shared_data_root

from endoked.runfolder import RunFolder
from endoked.scoring import score_run


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--exams", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--composition", default="crops", help="archive design: crops, full or heldout")
    ap.add_argument("--profile", default="cpu-small")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra --set overrides")
    ap.add_argument("--to", dest="stop", help="last stage to run (default: all)")
    args = ap.parse_args()
    data = shared_data_root()
    archive = args.out / "archive"
    t0 = time.perf_counter()
    if not (archive / "manifest.jsonl").is_file():
        build_archive(archive, ArchiveSpec(exams=args.exams, seed=args.seed, composition=args.composition))
    build_s = time.perf_counter() - t0
    run = args.out / f"run-{args.profile}"
    cmd = [
        sys.executable,
        "-m",
        "endoked",
        "--no-progress",
        "run",
        "--archive",
        str(archive / "manifest.jsonl"),
        "--out",
        str(run),
        "--profile",
        args.profile,
        "--set",
        f"seed={args.seed}",
        "--set",
        f"eval.data={data / 'polyp' / 'TestDataset'}",
    ]
    for o in args.overrides:
        cmd += ["--set", o]
    if args.stop:
        cmd += ["--to", args.stop]
    t1 = time.perf_counter()
    proc = subprocess.run(cmd, check=False)
    wall = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode != 0:
        print(f"pipeline failed with exit code {proc.returncode}", file=sys.stderr)
        return proc.returncode
    rf = RunFolder(run)
    ledger = rf.ledger()["stages"]
    print(
        f"Machine: {platform.machine()} {platform.processor() or ''}, profile {args.profile}, "
        f"{args.exams} exams, seed {args.seed}; archive built in {build_s:.0f}s; pipeline wall time {wall:.0f}s; "
        f"peak RSS {peak_mb:.0f} MB\n"
    )
    print("| stage | seconds | counts |\n|---|---|---|")
    for name, e in ledger.items():
        counts = ", ".join(f"{k}={v}" for k, v in e.get("counts", {}).items() if not isinstance(v, dict | list))
        print(f"| {name} | {e.get('seconds', 0):.0f} | {counts} |")
    print("\n| stage | metric | value |\n|---|---|---|")
    for stage, vals in score_run(rf, archive).items():
        for k, v in vals.items():
            print(f"| {stage} | {k} | {_fmt(v)} |")
    metrics = run / "eval" / "metrics.md"
    if metrics.is_file():
        print("\nTest sets (segmentation model trained on pseudo masks only):\n")
        print(metrics.read_text())
    (args.out / f"summary-{args.profile}.json").write_text(
        json.dumps(
            {"wall_s": wall, "peak_rss_mb": peak_mb, "stages": {k: v.get("seconds") for k, v in ledger.items()}},
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
