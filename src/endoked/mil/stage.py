"""The mil pipeline stage: report labels (bag labels) + exam images -> a polyp score per image.

Reads ``ingest/images.parquet`` and ``extract/labels.parquet``, with the reviewers' corrections of ``polyp`` and
``polyp_count`` (``review/decisions.sqlite``, :func:`endoked.reviewed.apply_label_corrections`) applied; writes

- ``mil/image_scores.parquet`` ("image_scores"): exam_id, image, score (float, null when the image could not
  be decoded), bag_label (1 positive, 0 negative, -1 excluded from training: uncertain/failed labels);
- ``mil/selection.parquet`` ("selection"): exam_id, image, label (1 positive, 0 negative), score, by ("score":
  above the threshold or among the lowest negatives; "rank": among the top-k of its positive exam);
- ``mil/model.pt`` ("checkpoint"), ``mil/metrics.json`` ("metrics").

Partial work (encoder cache chunks, ``train/last.pt``) stays in the stage folder, so an interrupted stage
resumes where it stopped.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

from endoked import tables
from endoked.batching import run_batches
from endoked.device import resolve_device
from endoked.errors import StageError
from endoked.io import atomic_write_json, write_parquet
from endoked.mil.api import process_cached_batch, setup_cached
from endoked.mil.checkpoint import save_model
from endoked.mil.config import MilConfig
from endoked.mil.data import Bag, encode_images, split_bags
from endoked.mil.encoder import build_encoder
from endoked.mil.model import MilHeads
from endoked.mil.train import train_mil
from endoked.pipeline import StageContext, StageResult, StageSpec
from endoked.reviewed import apply_label_corrections

logger = logging.getLogger(__name__)

SCORES = "mil/image_scores"
SCORES_SCHEMA = tables.spec(SCORES).schema
SELECTION_SCHEMA = tables.spec("mil/selection").schema


def bag_labels(labels: Sequence[Mapping[str, Any]], cfg: MilConfig) -> tuple[dict[str, int], dict[str, int]]:
    """Map report labels to bag labels.

    Returns:
        ``({exam_id: 1 | 0 | -1}, counts)`` where counts has ``positive``, ``negative`` and ``excluded:<label>``.
    """
    out: dict[str, int] = {}
    counts: dict[str, int] = {"positive": 0, "negative": 0}
    for row in labels:
        value = row.get("polyp")
        if value in cfg.positive_labels:
            out[str(row["exam_id"])] = 1
            counts["positive"] += 1
        elif value in cfg.negative_labels:
            out[str(row["exam_id"])] = 0
            counts["negative"] += 1
        else:
            out[str(row["exam_id"])] = -1
            key = f"excluded:{value if value else 'missing'}"
            counts[key] = counts.get(key, 0) + 1
    return out, counts


def select_images(
    rows: Sequence[Mapping[str, Any]], cfg: MilConfig, polyp_counts: Mapping[str, int | None] | None = None
) -> list[dict[str, Any]]:
    """Selection for the CAM stage from image score rows (exam_id, image, score, bag_label).

    Positives: images of positive bags with score >= ``positive_threshold`` (``by`` = "score"), plus the top-k
    scored images of every positive bag with score >= ``top_min_score`` (``by`` = "rank"), where k is
    ``top_per_bag``, raised to the exam's reported polyp count (``polyp_counts``) when ``top_from_count``, capped
    at ``max_top_per_bag``. Negatives: the lowest-scored ``negative_fraction`` of the (scored) images of
    negative bags (ties broken by exam_id, image). Rows come out positives first, in input order.
    """
    counts = polyp_counts or {}
    ranked: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["bag_label"] == 1 and r["score"] is not None:
            ranked.setdefault(str(r["exam_id"]), []).append(r)
    by_rank: set[tuple[str, str]] = set()
    for exam, members in ranked.items():
        k = cfg.top_per_bag
        if cfg.top_from_count and counts.get(exam):
            k = max(k, int(counts[exam] or 0))
        k = min(k, cfg.max_top_per_bag)
        members.sort(key=lambda r: (-r["score"], r["image"]))
        by_rank.update((exam, str(r["image"])) for r in members[:k] if r["score"] >= cfg.top_min_score)
    pos = []
    for r in rows:
        if r["bag_label"] != 1 or r["score"] is None:
            continue
        if r["score"] >= cfg.positive_threshold:
            pos.append((r, "score"))
        elif (str(r["exam_id"]), str(r["image"])) in by_rank:
            pos.append((r, "rank"))
    neg_pool = sorted(
        (r for r in rows if r["bag_label"] == 0 and r["score"] is not None),
        key=lambda r: (r["score"], r["exam_id"], r["image"]),
    )
    neg = neg_pool[: math.floor(cfg.negative_fraction * len(neg_pool))]
    return [
        {"exam_id": r["exam_id"], "image": r["image"], "label": 1, "score": r["score"], "by": by} for r, by in pos
    ] + [{"exam_id": r["exam_id"], "image": r["image"], "label": 0, "score": r["score"], "by": "score"} for r in neg]


def run_mil(ctx: StageContext) -> StageResult:
    """Train the MIL model on labelled exams and score every image (see the module docstring)."""
    cfg: MilConfig = ctx.config.mil  # type: ignore[assignment]
    t0 = time.perf_counter()
    images = tables.rows(ctx.run, "ingest/images")
    labels = apply_label_corrections(ctx.run.root, tables.rows(ctx.run, "extract/labels"))  # reviewers' fixes win
    exam_label, label_counts = bag_labels(labels, cfg)
    if label_counts["positive"] == 0 or label_counts["negative"] == 0:
        raise StageError(
            f"mil needs positive and negative exams; the report labels give {label_counts['positive']} "
            f"positive ({cfg.positive_labels}) and {label_counts['negative']} negative "
            f"({cfg.negative_labels}). Check extract/labels.parquet or mil.positive_labels/"
            "mil.negative_labels."
        )
    device = resolve_device(ctx.config.device)
    torch.manual_seed(ctx.config.seed)
    encoder = build_encoder(cfg).to(device).eval()
    keys = [str(r.get("sha256") or r["path"]) for r in images]
    store_dtype = torch.float16 if (cfg.cache_dtype == "float16" and cfg.trainable_blocks > 0) else None
    store = encode_images(
        list(zip(keys, (str(r["path"]) for r in images), strict=True)),
        encoder.prefix,
        cfg.image_size,
        device,
        cfg.feature_batch_size,
        ctx.config.workers,
        cache_dir=ctx.work_dir / "cache",
        store_dtype=store_dtype,
        progress=ctx.progress,
    )
    t_encode = time.perf_counter() - t0
    index = store.index()
    items: dict[str, list[int]] = {}
    for key, row in zip(keys, images, strict=True):
        if key in index:
            items.setdefault(str(row["exam_id"]), []).append(index[key])
    bags = [Bag(e, lab, tuple(items[e])) for e, lab in sorted(exam_label.items()) if lab >= 0 and items.get(e)]
    if not any(b.label == 1 for b in bags) or not any(b.label == 0 for b in bags):
        raise StageError(
            "mil: after dropping exams without readable images, positive or negative bags are "
            "missing; check ingest/images.parquet against extract/labels.parquet (exam_id must match)"
        )
    train_bags, val_bags = split_bags(bags, cfg.val_fraction, ctx.config.seed)
    heads = MilHeads(
        encoder.num_features if not encoder.frozen else int(store.data.shape[1]),
        cfg.hidden_dim,
        cfg.attention_dim,
        cfg.dropout,
    )
    state = train_mil(
        heads,
        encoder,
        store.data,
        train_bags,
        val_bags,
        cfg,
        seed=ctx.config.seed,
        device=device,
        checkpoint_dir=ctx.work_dir / "train",
        progress=ctx.progress,
    )
    work = ctx.work_dir
    source = getattr(encoder.model, "weights_source", None)
    meta = {
        "best_epoch": state.best_epoch,
        "val_bag_auroc": state.best_auroc,
        "epochs_run": state.epoch + 1,
        "weights_source": source.describe() if source is not None else "unknown",
    }
    save_model(work / "model.pt", heads, encoder, cfg, meta)  # the scoring batches load it (also on Ray actors)
    failed = store.failed
    del store, encoder, heads  # the batch core loads the model and the cache itself
    rows = _score_images(ctx, cfg, keys, images, exam_label, str(device))
    polyp_counts = {str(r["exam_id"]): r.get("polyp_count") for r in labels}
    selection = select_images(rows, cfg, polyp_counts)
    write_parquet(work / "image_scores.parquet", rows, schema=SCORES_SCHEMA)
    write_parquet(work / "selection.parquet", selection, schema=SELECTION_SCHEMA)
    n_sel_pos = sum(r["label"] == 1 for r in selection)
    n_by_rank = sum(r["by"] == "rank" for r in selection)
    counts = {
        **label_counts,
        "images": len(rows),
        "unreadable_images": len(failed),
        "train_bags": len(train_bags),
        "val_bags": len(val_bags),
        "selected_positive": n_sel_pos,
        "selected_by_rank": n_by_rank,
        "selected_negative": len(selection) - n_sel_pos,
        "best_epoch": state.best_epoch,
        "val_bag_auroc": round(state.best_auroc, 4),
    }
    logger.info(
        "mil: selected %d positive (%d by their rank in the exam) and %d negative images (threshold %.2f, "
        "lowest %.0f%% of negatives)",
        n_sel_pos,
        n_by_rank,
        len(selection) - n_sel_pos,
        cfg.positive_threshold,
        100 * cfg.negative_fraction,
    )
    metrics = {
        **meta,
        "counts": counts,
        "history": state.history,
        "stopped_early": state.stopped_early,
        "seconds": {"encode": round(t_encode, 2), "total": round(time.perf_counter() - t0, 2)},
        "unreadable": dict(list(failed.items())[:50]),
        "score_quantiles": _quantiles([float(r["score"]) for r in rows if r["score"] is not None]),
    }
    atomic_write_json(work / "metrics.json", metrics)
    outputs = {
        "image_scores": ctx.run.rel(work / "image_scores.parquet"),
        "selection": ctx.run.rel(work / "selection.parquet"),
        "checkpoint": ctx.run.rel(work / "model.pt"),
        "metrics": ctx.run.rel(work / "metrics.json"),
    }
    return StageResult(outputs=outputs, counts=counts)


def _score_images(
    ctx: StageContext,
    cfg: MilConfig,
    keys: Sequence[str],
    images: Sequence[Mapping[str, Any]],
    exam_label: Mapping[str, int],
    device: str,
) -> list[dict[str, Any]]:
    """``mil/image_scores`` rows of every image (input order): the batch core
    :func:`endoked.mil.api.process_cached_batch` over the saved model and the encoder cache, in resumable chunks."""
    work = ctx.work_dir
    done = run_batches(
        [
            {
                "exam_id": str(r["exam_id"]),
                "image": str(r["image"]),
                "key": key,
                "bag_label": exam_label.get(str(r["exam_id"]), -1),
            }
            for key, r in zip(keys, images, strict=True)
        ],
        setup=partial(setup_cached, str(work / "model.pt"), str(work / "cache"), device),
        process_batch=process_cached_batch,
        outputs=(SCORES,),
        chunk_dir=work / "chunks",
        run_root=ctx.run.root,
        chunk_size=cfg.chunk_size,
        desc="mil score",
        progress=ctx.progress,
    )
    return done.tables[SCORES]


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    q = np.quantile(np.asarray(values, dtype=np.float64), [0.0, 0.25, 0.5, 0.75, 1.0])
    return dict(zip(("min", "q25", "median", "q75", "max"), (round(float(v), 4) for v in q), strict=True))


STAGE = StageSpec(name="mil", run=run_mil, depends=("ingest", "extract"), reviewed="labels")
