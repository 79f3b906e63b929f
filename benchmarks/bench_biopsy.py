"""Optical-biopsy benchmark: the data-efficiency curve with and without report-based pre-training.

Steps (all seeded):

1. ``benchmarks/biopsy_archive.py`` splits BKAI-IGH NeoPolyp-Small 50/20/30 into a report-supervised archive,
   a labelled fine-tuning pool and a test set.
2. The pipeline runs on the archive up to ``mil`` (ingest -> extract -> mil) with the ``cpu-small`` profile:
   the report labels come from the rules extractor, the image scores from the MIL model. When the package has
   no extract stage yet, a stand-in stage runs the same rules extractor library (``endoked.extract.api``)
   through the same stage runner and writes ``extract/labels.parquet``.
3. Pre-training: the top-k MIL-scored images of each exam with a known pathology class carry the class
   (:func:`endoked.biopsy.api.pretrain_set_from_run`); the head is trained on cached frozen-encoder features.
4. Curve: 5-100 % of the pool, ``curve_repeats`` subsets per share, the pre-trained model and an ImageNet-only
   model fine-tuned with the same step budget, calibrated on the same validation images, scored on the test
   set with bootstrap 95 % CIs. A zero-label point scores the pre-trained model as it is.

Usage::

    python benchmarks/bench_biopsy.py --work /tmp/biopsy-bench --out /tmp/biopsy-bench/results

Writes ``results.json``, ``curve.md`` (the table for docs/BENCHMARKS.md), ``curve.png`` and ``roc.png``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import importlib.util
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from biopsy_archive import build as build_archive  # noqa: E402

from endoked.biopsy.api import pretrain_set_from_run  # noqa: E402
from endoked.biopsy.config import BiopsyConfig  # noqa: E402
from endoked.biopsy.curve import data_efficiency  # noqa: E402
from endoked.biopsy.data import read_labelled_set, split_indices  # noqa: E402
from endoked.biopsy.features import VIEWS, encode_items  # noqa: E402
from endoked.biopsy.metrics import evaluate, plot_roc  # noqa: E402
from endoked.biopsy.model import build_model  # noqa: E402
from endoked.biopsy.train import calibrate, probabilities, train_steps  # noqa: E402

logger = logging.getLogger("endoked.benchmarks.biopsy")


# ----------------------------------------------------------------------------------------------- pipeline
def _standin_extract_stage() -> Any:
    """An extract stage built on the rules extractor library, for packages without ``endoked.extract.stage``."""
    from endoked.extract.api import process_batch
    from endoked.io import read_parquet, write_parquet
    from endoked.pipeline import StageResult, StageSpec

    def run(ctx: Any) -> Any:
        exams = read_parquet(ctx.upstream("ingest", "exams")).to_pylist()
        rows = process_batch([{"id": e["exam_id"], "text": e["report"], "pathology": e["pathology"]} for e in exams])
        table = [
            {
                "exam_id": str(r["id"]),
                "polyp": r.get("polyp"),
                "polyp_count": r.get("polyp_count"),
                "polyps": json.dumps(r.get("polyps") or [], ensure_ascii=False),
                "malignancy_suspected": bool(r.get("malignancy_suspected")),
                "pathology": r.get("pathology"),
                "error": r.get("error"),
            }
            for r in rows
        ]
        write_parquet(ctx.work_dir / "labels.parquet", table)
        return StageResult(
            outputs={"labels": ctx.run.rel(ctx.work_dir / "labels.parquet")},
            counts={"exams": len(table), "errors": sum(r["error"] is not None for r in table)},
        )

    return StageSpec(name="extract", run=run, depends=("ingest",))


def run_pipeline(archive: Path, run_dir: Path, seed: int) -> dict[str, Any]:
    """Ingest -> extract -> mil on ``archive`` with the cpu-small profile; returns how extract was run."""
    from endoked.config import resolve_config
    from endoked.pipeline import available_stages, run_stage
    from endoked.runfolder import RunFolder

    cfg = resolve_config(
        "cpu-small", overrides=[f"seed={seed}"], extra={"ingest": {"archive": str(Path(archive).resolve())}}
    )
    run = RunFolder(run_dir)
    run.init(cfg.to_yaml(), cfg.seed, "cpu")
    stages = available_stages()
    real_extract = importlib.util.find_spec("endoked.extract.stage") is not None and "extract" in stages
    specs = [stages["ingest"], stages["extract"] if real_extract else _standin_extract_stage(), stages["mil"]]
    times = {}
    for spec in specs:
        t0 = time.perf_counter()
        status, _ = run_stage(run, cfg, spec, progress=False)
        times[spec.name] = round(time.perf_counter() - t0, 1)
        logger.info("stage %s: %s in %.1fs", spec.name, status, times[spec.name])
    return {
        "extract": "endoked.extract stage" if real_extract else "rules extractor library (stand-in stage)",
        "stage_seconds": times,
    }


# ----------------------------------------------------------------------------------------------- curve
def _truth_classes(archive: Path) -> dict[str, str]:
    """Archive image -> "" (polyp-free), "0" or "1" (polyp class), from the archive's truth."""
    with open(archive / "truth" / "images.csv", encoding="utf-8", newline="") as fh:
        return {r["image"]: r["cls"] for r in csv.DictReader(fh)}


def bench(work: Path, out: Path, cfg: BiopsyConfig, seed: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    dev = torch.device("cpu")
    t_all = time.perf_counter()
    if not (work / "split.json").is_file():
        build_archive(work, seed)
    split = json.loads((work / "split.json").read_text(encoding="utf-8"))
    pipeline = run_pipeline(work / "archive" / "manifest.jsonl", work / "run", seed)
    pre_items, pre_counts = pretrain_set_from_run(work / "run", cfg)
    truth = _truth_classes(work / "archive")
    pre_truth = [truth.get(it.image, "") for it in pre_items]
    label_quality = {
        "images": len(pre_items),
        "polyp_of_stated_class": sum(t == str(it.label) for t, it in zip(pre_truth, pre_items, strict=True)),
        "polyp_free": sum(t == "" for t in pre_truth),
    }
    torch.manual_seed(cfg.seed)
    base = build_model(cfg).eval()
    imagenet_model = copy.deepcopy(base)
    n_views = len(VIEWS) if cfg.flip_views else 1
    timings: dict[str, float] = {}

    def encode(items: list[Any], views: int, name: str) -> Any:
        t0 = time.perf_counter()
        feats = encode_items(
            items,
            base.encoder.prefix,
            cfg.image_size,
            views,
            dev,
            cfg.feature_batch_size,
            2,
            cache_file=work / "cache" / f"{name}.pt",
            signature=f"{cfg.backbone}-{cfg.image_size}",
            desc=name,
        )
        timings[f"encode_{name}_s"] = round(time.perf_counter() - t0, 1)
        timings[f"encode_{name}_images"] = len(items) * views
        return feats

    y_pre = np.array([it.label for it in pre_items])
    tr, va = split_indices(y_pre, [it.group for it in pre_items], cfg.val_fraction, cfg.seed)
    pre_tr = encode([pre_items[i] for i in tr], n_views, "pretrain_train")
    pre_va = encode([pre_items[i] for i in va], 1, "pretrain_val")
    pretrained = copy.deepcopy(base)
    log = train_steps(
        pretrained,
        pre_tr,
        y_pre[tr],
        cfg,
        steps=cfg.pretrain_steps,
        lr=cfg.lr,
        label_smoothing=cfg.pretrain_label_smoothing,
        seed=cfg.seed,
        device=dev,
    )
    timings["pretrain_s"] = log.seconds
    pool_items, _ = read_labelled_set(work / "finetune.csv", cfg)
    test_items, _ = read_labelled_set(work / "test.csv", cfg)
    pool = encode(pool_items, n_views, "pool")
    test = encode(test_items, 1, "test")
    y_pool = np.array([it.label for it in pool_items])
    y_test = np.array([it.label for it in test_items])
    # zero labels: the pre-trained model calibrated on its own validation exams (report labels)
    zero = copy.deepcopy(pretrained)
    cal0 = calibrate(zero, pre_va, y_pre[va], cfg, dev)
    p_zero = probabilities(zero, test, dev)
    zero_row = evaluate(y_test, p_zero, zero.threshold, cfg.bootstrap, cfg.ci_level, cfg.seed)
    pre_val_auroc = evaluate(y_pre[va], probabilities(zero, pre_va, dev), 0.5, 0)["auroc"]
    t0 = time.perf_counter()
    arms = {"report-pretrained": (pretrained, True), "imagenet": (imagenet_model, False)}
    rows = data_efficiency(
        arms,
        {"report-pretrained": pool, "imagenet": pool},
        y_pool,
        [it.group for it in pool_items],
        {"report-pretrained": test, "imagenet": test},
        y_test,
        cfg,
        dev,
    )
    timings["curve_s"] = round(time.perf_counter() - t0, 1)
    timings["total_s"] = round(time.perf_counter() - t_all, 1)
    result = {
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores visible, torch threads {threads}, "
        "shared with other jobs",
        "config": cfg.model_dump(mode="json"),
        "split": split,
        "pipeline": pipeline,
        "pretrain_counts": pre_counts,
        "pretrain_label_quality": label_quality,
        "pretrain": {
            "n_train": len(tr),
            "n_val": len(va),
            "losses": log.losses,
            "val_auroc_vs_report_labels": pre_val_auroc,
            "calibration": cal0,
        },
        "zero_label": zero_row,
        "curve": rows,
        "timings": timings,
    }
    out.mkdir(parents=True, exist_ok=True)
    curves = {"0 %, report-pretrained": (y_test, p_zero)}
    for r in rows:
        if r["fraction"] in (min(cfg.curve_fractions), max(cfg.curve_fractions)):
            curves[f"{100 * r['fraction']:g} %, {r['arm']} (mean of repeats)"] = (
                y_test,
                np.array(r["test_probs_mean"]),
            )
    plot_roc(out / "roc.png", curves, title="BKAI-IGH test: neoplastic vs non-neoplastic")
    for r in rows:
        r.pop("test_probs_mean")
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "curve.md").write_text(markdown(result), encoding="utf-8")
    plot_curve(out / "curve.png", rows)
    return result


def _ci(row: dict[str, Any], m: str) -> str:
    ci = row.get(f"{m}_ci")
    return f"{row[m]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{row[m]:.3f}"


def markdown(result: dict[str, Any]) -> str:
    """The curve as a Markdown table."""
    lines = [
        "| labelled share | train / val images | model | AUROC [95% CI] | AUROC gain [95% CI] | accuracy | "
        "sensitivity | specificity |",
        "|---|---|---|---|---|---|---|---|",
    ]
    z = result["zero_label"]
    lines.append(
        f"| 0 % | 0 / 0 | report-pretrained, no fine-tuning | {_ci(z, 'auroc')} | | {_ci(z, 'accuracy')} | "
        f"{_ci(z, 'sensitivity')} | {_ci(z, 'specificity')} |"
    )
    for r in result["curve"]:
        gain = (
            f"{r['auroc_gain']:+.3f} [{r['auroc_gain_ci'][0]:+.3f}, {r['auroc_gain_ci'][1]:+.3f}]"
            if "auroc_gain" in r
            else ""
        )
        lines.append(
            f"| {100 * r['fraction']:g} % | {r['n_train']:.0f} / {r['n_val']:.0f} | {r['arm']} | "
            f"{_ci(r, 'auroc')} | {gain} | {_ci(r, 'accuracy')} | {_ci(r, 'sensitivity')} | "
            f"{_ci(r, 'specificity')} |"
        )
    return "\n".join(lines) + "\n"


def plot_curve(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
    for arm in dict.fromkeys(r["arm"] for r in rows):
        rs = [r for r in rows if r["arm"] == arm]
        x = [r["n_train"] + r["n_val"] for r in rs]
        ax.plot(x, [r["auroc"] for r in rs], "o-", label=arm)
        ax.fill_between(x, [r["auroc_ci"][0] for r in rs], [r["auroc_ci"][1] for r in rs], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("labelled images (train + validation)")
    ax.set_ylabel("test AUROC (95% CI)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the archive, run and caches")
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, archive and run")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="biopsy config override")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from endoked.biopsy.cli import build_config
    from endoked.progress import set_progress

    set_progress(False)
    cfg = build_config(None, args.overrides)
    result = bench(args.work, args.out, cfg, args.seed, args.threads)
    print(markdown(result))
    print(
        json.dumps(
            {
                "timings": result["timings"],
                "pretrain_label_quality": result["pretrain_label_quality"],
                "pipeline": result["pipeline"],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
