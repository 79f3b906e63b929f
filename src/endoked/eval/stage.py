"""The eval stage of the pipeline: the seg stage's model predicts every configured PraNet-layout test set,
and the maps are scored as the toolbox does. Skipped (with a note in its metrics) when ``eval.data`` is unset.

Outputs: ``eval/metrics.json`` (per set: metrics + curves), ``eval/metrics.md`` (table), ``eval/pred/<set>/``
(probability maps) and ``eval/plots/`` (Dice-vs-threshold curves, Dice histograms).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from endoked.eval.folder import evaluate_sets, find_sets
from endoked.eval.report import format_table, results_json
from endoked.io import atomic_write_json, atomic_write_text
from endoked.pipeline import StageContext, StageResult, StageSpec


def _data_fingerprint(ctx: StageContext) -> Any:
    root = ctx.config.eval.data
    if not root or not Path(root).is_dir():
        return None
    return {s: sorted(p.name for p in (Path(root) / s / "masks").iterdir()) for s in find_sets(root)}


def run_eval(ctx: StageContext) -> StageResult:
    """Predict and score every configured test set (see the module docstring)."""
    from endoked.seg import predict_folder

    cfg = ctx.config.eval
    out = ctx.work_dir
    if not cfg.data:
        atomic_write_json(out / "metrics.json", {"skipped": "eval.data is not set: no test set to score"})
        return StageResult(outputs={"metrics": ctx.run.rel(out / "metrics.json")}, counts={"sets": 0})
    root = Path(cfg.data)
    sets = list(cfg.sets) or find_sets(root)
    checkpoint = ctx.upstream("seg", "checkpoint")
    for name in sets:
        pred_dir = out / "pred" / name
        done = pred_dir / ".done"
        if done.is_file():  # finished set of an interrupted run
            continue
        predict_folder(
            checkpoint,
            root / name / "images",
            pred_dir,
            device=ctx.config.device,
            tta_flip=cfg.tta_flip,
            progress=ctx.progress,
        )
        done.touch()
    results = evaluate_sets({"endoked": out / "pred"}, root, cfg, sets=sets)
    atomic_write_json(out / "metrics.json", {"data": str(root), **results_json(results, cfg)})
    atomic_write_text(out / "metrics.md", format_table(results, markdown=True) + "\n")
    try:
        from endoked.eval.plots import write_plots

        write_plots(results, out / "plots", bins=cfg.hist_bins)
    except Exception as exc:  # plots are a convenience; the numbers are the output
        ctx.logger.warning("eval plots skipped: %s", exc)
    counts: dict[str, Any] = {"sets": len(results)}
    for r in results:
        counts[f"{r.set}_meanDice"] = round(float(r.metrics["mean_dice"]), 4)
    ctx.logger.info("eval: %s", json.dumps(counts))
    return StageResult(
        outputs={"metrics": ctx.run.rel(out / "metrics.json"), "table": ctx.run.rel(out / "metrics.md")}, counts=counts
    )


STAGE = StageSpec(name="eval", run=run_eval, depends=("seg",), external_inputs=_data_fingerprint)
