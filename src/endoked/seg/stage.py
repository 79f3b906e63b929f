"""The seg stage: train on the pseudo labels of ``prompt_seg``, refine them in rounds, keep the final model.

Outputs (run-relative): ``seg/model.pt`` ("checkpoint"), ``seg/metrics.json`` ("metrics": per-round training
and pseudo-label statistics), ``seg/curve.png`` ("curve"), ``seg/pseudo_stats.jsonl`` ("pseudo_stats": one
record per round), ``seg/pseudo_labels.parquet`` ("pseudo_labels": the final round's pool, the same columns
as ``prompt_seg/pseudo_labels.parquet``). Each round trains in ``seg/round<k>/``; a round that finished is
skipped on re-run and an interrupted one resumes from its ``last.pt``.

Reviewer decisions (``review/decisions.sqlite``, :mod:`endoked.reviewed`) outrank the automatic labels: a
rejected mask leaves the training pool, a fixed one replaces the automatic mask, and reviewed masks (accepted or
fixed) are not re-predicted by the refinement rounds; a rejected image never re-enters the pool as a new positive.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from endoked import reviewed, tables
from endoked.config import RunConfig, resolve_config
from endoked.device import resolve_device
from endoked.errors import StageError
from endoked.io import atomic_write_json, read_jsonl, write_jsonl, write_parquet
from endoked.pipeline import StageContext, StageResult, StageSpec
from endoked.runfolder import RunFolder
from endoked.scoring import load_truth
from endoked.seg.api import fit
from endoked.seg.config import SegConfig
from endoked.seg.data import SegItem
from endoked.seg.plots import write_curve

logger = logging.getLogger(__name__)


def resolve_seg_config(
    profile: str | None, config_file: str | Path | None, overrides: Sequence[str]
) -> tuple[SegConfig, RunConfig]:
    """The ``seg`` section and the run config, from a profile, a YAML file and ``--set`` overrides."""
    run_cfg = resolve_config(profile, config_file, overrides)
    return run_cfg.seg, run_cfg


def seg_config(ctx: StageContext) -> SegConfig:
    """The stage's config section."""
    return ctx.config.seg


def pseudo_label_items(run: RunFolder) -> tuple[list[SegItem], list[dict[str, Any]], dict[str, float]]:
    """Join a run's ``prompt_seg/pseudo_labels`` (reviewer decisions applied) with ``ingest/images``: one item per
    image with a mask file.

    Returns:
        Items (key ``exam_id/image``), error records for rows that cannot be used, and each item's score.
    """
    labels = reviewed.apply_decisions(run.root, tables.pseudo_labels(run))
    paths = tables.image_paths(run)
    items: list[SegItem] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    scores: dict[str, float] = {}
    for row_no, row in enumerate(labels):
        key = f"{row.get('exam_id')}/{row.get('image')}"
        path = paths.get((str(row.get("exam_id")), str(row.get("image"))))
        mask = run.abs(str(row.get("mask"))) if row.get("mask") else None
        reason = None
        if path is None:
            reason = "image not in ingest/images.parquet"
        elif mask is None or not mask.is_file():
            reason = f"mask file missing: {row.get('mask')}"
        elif key in seen:
            reason = "duplicate (exam_id, image) row"
        if reason or path is None:
            errors.append({"row": row_no, "key": key, "reason": reason})
            continue
        seen.add(key)
        scores[key] = float(row.get("score") or 0.0)
        items.append(SegItem(key, path, mask))
    return items, errors, scores


def mil_positives(run: RunFolder) -> list[tuple[str, Path]]:
    """``(key, image)`` of the MIL-selected positive images (``mil/selection``, label 1), once each."""
    paths = tables.image_paths(run)
    out: dict[str, Path] = {}
    for row in tables.selection(run):
        ref = (str(row["exam_id"]), str(row["image"]))
        if int(row["label"]) == 1 and ref in paths:
            out.setdefault(f"{ref[0]}/{ref[1]}", paths[ref])
    return list(out.items())


def mil_negatives(run: RunFolder, n: int, seed: int) -> list[SegItem]:
    """Up to ``n`` MIL-selected negative images (``mil/selection``, label 0) as polyp-free items (``mask=None``),
    a seeded draw in selection order."""
    if n <= 0:
        return []
    paths = tables.image_paths(run)
    refs = list(
        dict.fromkeys(
            (str(r["exam_id"]), str(r["image"]))
            for r in tables.selection(run)
            if int(r["label"]) == 0 and (str(r["exam_id"]), str(r["image"])) in paths
        )
    )
    if len(refs) > n:
        keep = sorted(np.random.default_rng(seed).permutation(len(refs))[:n].tolist())
        refs = [refs[i] for i in keep]
    return [SegItem(f"{e}/{i}", paths[(e, i)], None) for e, i in refs]


def truth_masks(ctx: StageContext) -> dict[str, Path]:
    """True masks of an archive that carries ``truth/images.csv`` (synthetic and benchmark archives), keyed
    ``exam_id/image``; else {}."""
    archive = getattr(ctx.config.ingest, "archive", None)
    truth = load_truth(str(archive)) if archive else None
    if truth is None:
        return {}
    return {f"{exam_id}/{image}": truth.root / mask for (exam_id, image), mask in truth.masks.items()}


def _pool_rows(
    items: Sequence[SegItem], ctx: StageContext, scores: dict[str, float], source: str
) -> list[dict[str, Any]]:
    kept = {k for k, action in reviewed.reviewed_keys(ctx.run.root).items() if action != "reject"}
    rows = []
    for it in items:
        exam_id, image = it.key.split("/", 1)
        rows.append(
            {
                "exam_id": exam_id,
                "image": image,
                "mask": ctx.run.rel(it.mask) if it.mask else None,
                "score": float(scores.get(it.key, 1.0)),
                "source": "reviewed" if it.key in kept else source,
            }
        )
    return rows


def _no_mask_reason(run: RunFolder) -> str:
    """Why prompt_seg left no pseudo mask, from its ledger counts (and its rejections file when it wrote one)."""
    counts = (run.entry("prompt_seg") or {}).get("counts", {})
    rejected = int(counts.get("rejected", 0) or 0)
    why = f"prompt_seg kept no mask of the {int(counts.get('images', 0) or 0)} images it was given"
    table = run.root / "prompt_seg" / "rejected.parquet"
    if rejected and table.is_file():
        why += f"; {rejected} rejected, with reasons in {table}"
    return why


def run_seg(ctx: StageContext) -> StageResult:
    """Train round 0 on the upstream pseudo labels, then ``refine_rounds`` refinement rounds."""
    cfg = seg_config(ctx)
    work = ctx.work_dir
    device = resolve_device(cfg.device or ctx.config.device)
    items, errors, scores = pseudo_label_items(ctx.run)
    if errors:
        write_jsonl(work / "errors.jsonl", errors)
    if not items:  # the stage's minimum: 1 usable pseudo mask
        why = f"{len(errors)} rows unusable, listed in {work / 'errors.jsonl'}" if errors else _no_mask_reason(ctx.run)
        raise StageError(
            f"seg: too few pseudo masks to train on: 0 usable (the minimum is 1) in "
            f"{ctx.upstream('prompt_seg', 'pseudo_labels')} ({why}); add exams with polyps to the archive, "
            "or keep more boxes (prompt_seg.rescue_dropped=true, a lower prompt_seg.min_score)"
        )
    truth = truth_masks(ctx)
    round_stats: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    checkpoint: Path | None = None
    prev_val: dict[str, float] = {}  # the previous round's validation figures (against its pseudo masks)
    positives = mil_positives(ctx.run) if cfg.refine.expand and cfg.refine.rounds else []
    negatives = mil_negatives(ctx.run, round(cfg.negatives_ratio * len(items)), ctx.config.seed)
    if cfg.negatives_ratio > 0:
        logger.info("seg: %d polyp-free images (MIL-selected negatives) join the training split", len(negatives))
    for rnd in range(cfg.refine.rounds + 1):
        rdir = work / f"round{rnd}"
        pool_file = rdir / "pool.jsonl"
        if rnd > 0:
            if not pool_file.is_file():
                val = float(prev_val.get("mean_dice", float("nan")))
                _refine_round(ctx, cfg, items, scores, checkpoint, rdir, device, truth, positives, val)
            saved = read_jsonl(pool_file)
            items = [SegItem(r["key"], Path(r["image"]), Path(r["mask"])) for r in saved]
            scores.update({r["key"]: float(r["score"]) for r in saved})
            stats = read_jsonl(rdir / "stats.jsonl")[0]
            round_stats.append({"round": rnd, **stats})
        done = rdir / "summary.json"
        warm = rnd > 0 and cfg.refine.warm_start
        result = fit(
            items,
            rdir,
            cfg,
            seed=ctx.config.seed + rnd,
            device=device,
            workers=ctx.config.workers,
            epochs=cfg.refine.epochs if warm else cfg.optim.epochs,
            init_checkpoint=checkpoint if warm else None,
            progress=ctx.progress,
            negatives=negatives,
        )
        checkpoint, prev_val = result.checkpoint, result.best_val
        history.extend({**h, "round": rnd} for h in result.history)
        logger.info(
            "seg round %d: %d images, best epoch %d, val %s (%s)",
            rnd,
            len(items),
            result.best_epoch,
            result.best_val,
            done,
        )
    if checkpoint is None:
        raise StageError("seg: no round was trained")
    shutil.copyfile(checkpoint, work / "model.pt")
    write_jsonl(work / "pseudo_stats.jsonl", round_stats)
    write_parquet(
        work / "pseudo_labels.parquet",
        _pool_rows(items, ctx, scores, "seg_refine" if cfg.refine.rounds else "prompt_seg"),
    )
    curve_rows = [{**h, "epoch": i + 1} for i, h in enumerate(history)]
    write_curve(curve_rows, work / "curve.png", title="seg training (all rounds, epochs in sequence)")
    summaries = [read_jsonl_safe(work / f"round{r}" / "summary.json") for r in range(cfg.refine.rounds + 1)]
    metrics = {
        "rounds": summaries,
        "pseudo_label_rounds": round_stats,
        "n_errors": len(errors),
        "final_val": summaries[-1].get("best_val", {}) if summaries else {},
    }
    atomic_write_json(work / "metrics.json", metrics)
    outputs = {
        name: ctx.run.rel(work / f)
        for name, f in (
            ("checkpoint", "model.pt"),
            ("metrics", "metrics.json"),
            ("curve", "curve.png"),
            ("pseudo_stats", "pseudo_stats.jsonl"),
            ("pseudo_labels", "pseudo_labels.parquet"),
        )
    }
    final_val = metrics["final_val"]
    return StageResult(
        outputs=outputs,
        counts={
            "images": len(items),
            "negatives": len(negatives),
            "rounds": cfg.refine.rounds,
            "rejected_rows": len(errors),
            "val_mean_dice": round(float(final_val.get("mean_dice", float("nan"))), 4),
        },
    )


def read_jsonl_safe(path: Path) -> dict[str, Any]:
    """A JSON object file (``summary.json``) or {} when absent."""
    import json

    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else {}


def _refine_round(
    ctx: StageContext,
    cfg: SegConfig,
    items: list[SegItem],
    scores: dict[str, float],
    checkpoint: Path | None,
    rdir: Path,
    device: Any,
    truth: dict[str, Path],
    positives: Sequence[tuple[str, Path]],
    val_mean_dice: float = float("nan"),
) -> None:
    """Predict the pool and the ``positives`` outside it, filter, write the new masks and ``pool.jsonl``
    (written last: the round's marker). ``val_mean_dice`` is the previous round's validation meanDice against
    its pseudo masks, for the round gate (``refine.min_val_dice``; a round without validation is not gated)."""
    from endoked.seg.predict import Predictor
    from endoked.seg.refine import refine_pool

    if checkpoint is None:
        raise StageError("seg: a refinement round needs the previous round's checkpoint")
    segmenter = None
    if cfg.refine.segmenter:
        from endoked.prompt_seg import create_segmenter

        segmenter = partial(create_segmenter, cfg.refine.segmenter)
    predictor = partial(Predictor.from_checkpoint, str(checkpoint), str(device), cfg.predict.tta_flip)
    decided = reviewed.reviewed_keys(ctx.run.root)  # reviewed masks stay as the reviewer left them
    fixed = [it for it in items if decided.get(it.key) in ("accept", "fix")]
    have = {it.key for it in items}
    unlabelled = [(key, image) for key, image in positives if key not in have and key not in decided]
    gated = cfg.refine.min_val_dice > 0 and val_mean_dice < cfg.refine.min_val_dice  # NaN: not gated
    if gated:
        logger.warning(
            "seg refinement round gated: the previous round's validation meanDice against its pseudo masks is "
            "%.3f, under refine.min_val_dice=%.2f; its predictions are recorded but replace and add no mask",
            val_mean_dice,
            cfg.refine.min_val_dice,
        )
    new_items, records, stats = refine_pool(
        [it for it in items if it.key not in decided],
        predictor,
        cfg,
        rdir / "masks",
        segmenter=segmenter,
        truth=truth,
        batch_size=cfg.predict.batch_size,
        progress=ctx.progress,
        unlabelled=unlabelled,
        gated=gated,
    )
    new_items = [*new_items, *fixed]
    stats["gated"] = gated
    stats["val_mean_dice_before"] = None if math.isnan(val_mean_dice) else round(val_mean_dice, 4)
    stats["n_reviewed"] = len(fixed)
    stats["n_pool_after"] = len(new_items)
    logger.info("seg refinement round: %s", {k: v for k, v in stats.items() if k != "drop_reasons"})
    write_jsonl(rdir / "records.jsonl", records)
    write_jsonl(rdir / "stats.jsonl", [stats])
    new_scores = {r["key"]: float(r["score"]) for r in records if r["kept"]}
    write_jsonl(
        rdir / "pool.jsonl",
        [
            {
                "key": it.key,
                "image": str(it.image),
                "mask": str(it.mask),
                "score": new_scores.get(it.key, scores.get(it.key, 0.0)),
            }
            for it in new_items
        ],
    )


STAGE = StageSpec(name="seg", run=run_seg, depends=("ingest", "mil", "prompt_seg"), reviewed="images")
