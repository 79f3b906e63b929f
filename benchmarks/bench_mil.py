"""MIL benchmark: instance AUROC/AP of the mil stage's image scores against an archive's truth.

Runs ingest, takes report labels from the archive's truth (so the figure measures MIL alone, not report
extraction), runs the mil stage, and scores ``image_scores`` against ``truth/images.csv``: over frames of
positive exams (the figure the CAM stage depends on) and over all frames. With ``--compare-random`` the
same run is repeated with a randomly initialised encoder.

Usage::

    python benchmarks/public_archive.py --out /tmp/pub --exams 300 --seed 0
    python benchmarks/bench_mil.py --archive /tmp/pub --out /tmp/bench_mil --profile cpu-small --compare-random
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from endoked.config import resolve_config
from endoked.io import read_parquet, write_parquet
from endoked.mil.metrics import instance_metrics
from endoked.mil.stage import STAGE as MIL_STAGE
from endoked.pipeline import available_stages, run_stage
from endoked.runfolder import RunFolder
from endoked.synth.truth import load_truth


def _truth_labels(archive: Path) -> list[dict[str, Any]]:
    truth = load_truth(archive)
    return [
        {
            "exam_id": e,
            "polyp": lab["polyp"],
            "polyp_count": lab["polyp_count"],
            "polyps": json.dumps(lab["polyps"]),
            "malignancy_suspected": bool(lab["malignancy_suspected"]),
            "pathology": lab["pathology"],
            "error": None,
        }
        for e, lab in truth.exams.items()
    ]


def run_one(archive: Path, out: Path, profile: str, overrides: Sequence[str]) -> dict[str, Any]:
    """Ingest + truth labels + mil in run folder ``out``; returns figures and wall times."""
    manifest = archive / "manifest.jsonl"
    cfg = resolve_config(profile, overrides=[f"ingest.archive={manifest}", *overrides])
    run = RunFolder(out)
    run.init(cfg.to_yaml(), cfg.seed, cfg.device)
    t0 = time.perf_counter()
    run_stage(run, cfg, available_stages()["ingest"])
    t_ingest = time.perf_counter() - t0
    labels_path = run.stage_dir("extract") / "labels.parquet"
    write_parquet(labels_path, _truth_labels(archive))
    run.mark_running("extract", "truth-labels", {"archive": str(archive)})
    run.mark_done("extract", {"labels": run.rel(labels_path)}, {}, 0.0)
    t1 = time.perf_counter()
    run_stage(run, cfg, MIL_STAGE)
    t_mil = time.perf_counter() - t1
    truth = load_truth(archive)
    rows = read_parquet(run.output("mil", "image_scores")).to_pylist()
    scored = [r for r in rows if r["score"] is not None]
    pos_exam = {e for e, lab in truth.exams.items() if lab["polyp"] == "present"}
    in_pos = [r for r in scored if r["exam_id"] in pos_exam]
    metrics = json.loads(run.output("mil", "metrics").read_text(encoding="utf-8"))
    return {
        "overrides": list(overrides),
        "instance_positive_exams": instance_metrics(
            [r["score"] for r in in_pos], [int(truth.image_polyp[r["image"]]) for r in in_pos]
        ),
        "instance_all": instance_metrics(
            [r["score"] for r in scored], [int(truth.image_polyp[r["image"]]) for r in scored]
        ),
        "val_bag_auroc": metrics["val_bag_auroc"],
        "best_epoch": metrics["best_epoch"],
        "epochs_run": metrics["epochs_run"],
        "counts": metrics["counts"],
        "seconds": {"ingest": round(t_ingest, 1), "mil": round(t_mil, 1), **metrics["seconds"]},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, required=True, help="archive folder with truth/")
    parser.add_argument("--out", type=Path, required=True, help="folder for run folders and results.json")
    parser.add_argument("--profile", default="cpu-small")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override")
    parser.add_argument("--compare-random", action="store_true", help="also run with a random encoder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}",
        "profile": args.profile,
        "archive": str(args.archive),
    }
    results["pretrained"] = run_one(args.archive, args.out / "pretrained", args.profile, args.overrides)
    if args.compare_random:
        results["random_init"] = run_one(
            args.archive, args.out / "random", args.profile, [*args.overrides, "mil.pretrained=false"]
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
