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

Fine-tuning variants of the pre-trained model are compared side by side in one run: every ``--anchor`` value
(L2-SP strength, ``finetune_anchor``) is one more pre-trained arm (one more fine-tuning run per subset), every
``--select`` rule (``last``, ``validation``, ``interpolate``; the latter two under each ``--select-metric``) is
read from the same fine-tuned models at the cost of a few validation passes. The cached features are shared.

Usage::

    python benchmarks/bench_biopsy.py --work /tmp/biopsy-bench --out /tmp/biopsy-bench/results
    python benchmarks/bench_biopsy.py --work /tmp/biopsy-bench --out /tmp/biopsy-bench/variants \
        --select last validation interpolate --select-metric auroc log_loss --anchor 0 0.01 0.1 1

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


def variant_rules(selects: Sequence[str], metrics: Sequence[str]) -> list[tuple[Any, Any]]:
    """``(finetune_select, finetune_select_metric)`` pairs: ``last`` once, the other rules under every metric."""
    rules: list[tuple[Any, Any]] = []
    for sel in selects:
        for metric in metrics[:1] if sel == "last" else metrics:
            if (sel, metric) not in rules:
                rules.append((sel, metric))
    return rules


def pretrained_arm(anchor: float, anchors: Sequence[float]) -> str:
    return "report-pretrained" if len(anchors) == 1 else f"report-pretrained, anchor {anchor:g}"


def curve_variants(
    pretrained: Any,
    imagenet_model: Any,
    pool: Any,
    y_pool: np.ndarray,
    groups: Sequence[str],
    test: Any,
    y_test: np.ndarray,
    cfg: BiopsyConfig,
    dev: torch.device,
    rules: Sequence[tuple[Any, Any]],
    anchors: Sequence[float],
) -> list[dict[str, Any]]:
    """The curve of every variant: one pre-trained arm per anchor (each read under every rule) and the
    ImageNet arm, the baseline of the AUROC gain; all arms share the cached pool and test features."""
    arms: dict[str, Any] = {pretrained_arm(a, anchors): (pretrained, True) for a in anchors}
    configs = {
        pretrained_arm(a, anchors): BiopsyConfig.model_validate({**cfg.model_dump(), "finetune_anchor": a})
        for a in anchors
    }
    arms["imagenet"] = (imagenet_model, False)
    return data_efficiency(
        arms,
        dict.fromkeys(arms, pool),
        y_pool,
        groups,
        dict.fromkeys(arms, test),
        y_test,
        cfg,
        dev,
        configs=configs,
        rules=rules,
        baseline="imagenet",
    )


def bench(
    work: Path,
    out: Path,
    cfg: BiopsyConfig,
    seed: int,
    threads: int,
    selects: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    anchors: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Run the benchmark; ``selects``, ``metrics`` and ``anchors`` default to ``cfg``'s fine-tuning recipe."""
    torch.set_num_threads(threads)
    selects = list(selects or [cfg.finetune_select])
    metrics = list(metrics or [cfg.finetune_select_metric])
    anchors = list(dict.fromkeys(anchors if anchors is not None else [cfg.finetune_anchor]))
    rules = variant_rules(selects, metrics)
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
    rows = curve_variants(
        pretrained,
        imagenet_model,
        pool,
        y_pool,
        [it.group for it in pool_items],
        test,
        y_test,
        cfg,
        dev,
        rules,
        anchors,
    )
    timings["curve_s"] = round(time.perf_counter() - t0, 1)
    timings["total_s"] = round(time.perf_counter() - t_all, 1)
    result = {
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores visible, torch threads {threads}, "
        "shared with other jobs",
        "config": cfg.model_dump(mode="json"),
        "variants": {"anchors": anchors, "rules": [list(r) for r in rules]},
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
    first = (pretrained_arm(anchors[0], anchors), rows[0]["select"])
    for r in rows:
        if r["fraction"] in (min(cfg.curve_fractions), max(cfg.curve_fractions)) and (
            (r["arm"], r["select"]) == first or r["arm"] == "imagenet"
        ):
            curves[f"{100 * r['fraction']:g} %, {_model(r)} (mean of repeats)"] = (
                y_test,
                np.array(r["test_probs_mean"]),
            )
    plot_roc(out / "roc.png", curves, title="BKAI-IGH test: neoplastic vs non-neoplastic")
    for r in rows:
        r.pop("test_probs_mean")
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "curve.md").write_text(markdown(result), encoding="utf-8")
    plot_curve(out / "curve.png", rows, zero_row["auroc"])
    return result


def _ci(row: dict[str, Any], m: str) -> str:
    ci = row.get(f"{m}_ci")
    return f"{row[m]:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{row[m]:.3f}"


def _gain(row: dict[str, Any], key: str) -> str:
    if key not in row:
        return ""
    ci = row.get(f"{key}_ci")
    return f"{row[key]:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else f"{row[key]:+.3f}"


def _model(row: dict[str, Any]) -> str:
    return row["arm"] if row["arm"] == "imagenet" else f"{row['arm']}, {row['select']}"


def _kept(row: dict[str, Any]) -> str:
    if row["arm"] == "imagenet":
        return ""
    k = row["kept"]
    return f"{k['pretrained']} / {k['finetuned']} / {k['interpolated']} (a {row['alpha_mean']:.2f})"


def markdown(result: dict[str, Any]) -> str:
    """The curve as a Markdown table, then which variants reach the pre-trained head's AUROC at every share."""
    lines = [
        "| labelled share | train / val images | model | kept: pre-trained / fine-tuned / interpolated (mean a) | "
        "AUROC [95% CI] | vs pre-trained head [95% CI] | vs imagenet [95% CI] | accuracy | sensitivity | "
        "specificity |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    z = result["zero_label"]
    lines.append(
        f"| 0 % | 0 / 0 | report-pretrained, no fine-tuning | | {_ci(z, 'auroc')} | | | {_ci(z, 'accuracy')} | "
        f"{_ci(z, 'sensitivity')} | {_ci(z, 'specificity')} |"
    )
    for r in result["curve"]:
        lines.append(
            f"| {100 * r['fraction']:g} % | {r['n_train']:.0f} / {r['n_val']:.0f} | {_model(r)} | {_kept(r)} | "
            f"{_ci(r, 'auroc')} | {_gain(r, 'auroc_gain_vs_start')} | {_gain(r, 'auroc_gain')} | "
            f"{_ci(r, 'accuracy')} | {_ci(r, 'sensitivity')} | {_ci(r, 'specificity')} |"
        )
    lines += ["", "Fine-tuned AUROC at or above the pre-trained head's (0 % row) at every labelled share:", ""]
    for model in dict.fromkeys(_model(r) for r in result["curve"] if "auroc_gain_vs_start" in r):
        rs = [r for r in result["curve"] if _model(r) == model]
        worst = min(rs, key=lambda r: r["auroc_gain_vs_start"])
        verdict = "yes" if worst["auroc_gain_vs_start"] >= 0 else "no"
        lines.append(
            f"- {model}: {verdict} (lowest gain {_gain(worst, 'auroc_gain_vs_start')} at {100 * worst['fraction']:g} %)"
        )
    return "\n".join(lines) + "\n"


def plot_curve(path: Path, rows: Sequence[dict[str, Any]], zero_auroc: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for model in dict.fromkeys(_model(r) for r in rows):
        rs = [r for r in rows if _model(r) == model]
        x = [r["n_train"] + r["n_val"] for r in rs]
        ax.plot(x, [r["auroc"] for r in rs], "o-", label=model)
        ax.fill_between(x, [r["auroc_ci"][0] for r in rs], [r["auroc_ci"][1] for r in rs], alpha=0.15)
    if zero_auroc is not None:
        ax.axhline(zero_auroc, color="grey", linestyle="--", linewidth=1, label="report-pretrained, no fine-tuning")
    ax.set_xscale("log")
    ax.set_xlabel("labelled images (train + validation)")
    ax.set_ylabel("test AUROC (95% CI)")
    ax.legend(fontsize=6)
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
    parser.add_argument(
        "--select",
        nargs="+",
        choices=["last", "validation", "interpolate"],
        help="finetune_select rules read from each fine-tuned pre-trained model (default: the config's)",
    )
    parser.add_argument(
        "--select-metric",
        nargs="+",
        choices=["auroc", "log_loss"],
        help="finetune_select_metric values for the validation and interpolate rules (default: the config's)",
    )
    parser.add_argument(
        "--anchor",
        nargs="+",
        type=float,
        help="finetune_anchor values; each is one pre-trained arm fine-tuned anew (default: the config's)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from endoked.biopsy.cli import build_config
    from endoked.progress import set_progress

    set_progress(False)
    cfg = build_config(None, args.overrides)
    if args.anchor and min(args.anchor) < 0:
        parser.error("--anchor values must be >= 0")
    result = bench(args.work, args.out, cfg, args.seed, args.threads, args.select, args.select_metric, args.anchor)
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
