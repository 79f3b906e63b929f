"""Throughput of the ``rules`` report extractor on synthetic reports, one core.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/bench_extract.py [--n 10000] [--repeats 5] [--seed 0]
        [--langs en,zh] [--dev PATH]

Reports: ``endoked.synth.reports.synth_reports(n, seed, langs)`` (English and Chinese). Each repeat labels
all reports through :func:`endoked.extract.process_batch` (input checks included) in one process; the
script prints the median reports/s over the repeats, by wall clock and by process CPU time (the CPU
figure is the one to compare on a shared machine). With ``--dev`` it also scores the development set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _reports(n: int, seed: int, langs: tuple[str, ...]) -> list[dict[str, Any]]:
    try:
        from endoked.synth.reports import synth_reports
    except ImportError as exc:  # pragma: no cover - depends on the installed package
        sys.exit(f"endoked.synth.reports is not available ({exc}); install the full package to run this benchmark")
    return synth_reports(n, seed, langs=langs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="number of synthetic reports")
    ap.add_argument("--repeats", type=int, default=5, help="timed passes (median reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--langs", default="en,zh")
    ap.add_argument("--dev", type=Path, default=None, help="development set to score as well")
    args = ap.parse_args(argv)

    from endoked.extract import create_extractor, process_batch
    from endoked.extract.evaluate import evaluate

    rows = _reports(args.n, args.seed, tuple(args.langs.split(",")))
    chars = sum(len(r["text"]) for r in rows)
    ex = create_extractor("rules")
    process_batch(rows[:200], ex)  # warm-up: compile regexes, fill caches
    wall, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = process_batch(rows, ex)
        wall.append(len(rows) / (time.perf_counter() - t0))
        cpu.append(len(rows) / (time.process_time() - c0))
    report = evaluate(rows, out)["by_lang"]
    result: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus_visible": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "n_reports": len(rows),
        "mean_chars": round(chars / len(rows), 1),
        "repeats": args.repeats,
        "reports_per_s_wall_median": round(statistics.median(wall), 1),
        "reports_per_s_cpu_median": round(statistics.median(cpu), 1),
        "wall_runs": [round(x, 1) for x in wall],
        "cpu_runs": [round(x, 1) for x in cpu],
        "synthetic_accuracy": {
            lang: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figs.items() if k != "polyp_confusion"}
            for lang, figs in report.items()
        },
    }
    if args.dev is not None:
        from endoked.io import read_jsonl

        gold = read_jsonl(args.dev)
        dev = evaluate(gold, process_batch(gold, ex))["by_lang"]
        result["dev"] = {
            lang: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figs.items() if k != "polyp_confusion"}
            for lang, figs in dev.items()
        }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
