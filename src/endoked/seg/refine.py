"""Refinement rounds: the trained network's predictions become the next round's pseudo labels.

One round: predict every image of the training pool (and, optionally, the positive images that have no
pseudo mask yet) at its own size -> threshold -> box filters with the CAM stage's code
(:func:`endoked.boxes.boxes_from_cam`: component count, box area ``min_box_area``..``max_box_area``,
border contact only with ``reject_border``) -> optionally a box-prompted segmenter (:mod:`endoked.prompt_seg`)
on the kept boxes -> new masks. Images whose prediction fails the filters keep their previous mask (or leave
the pool, ``refine_keep_previous=False``);
an image without a mask joins the pool when its prediction passes the filters and scores at least
``refine_min_score_new``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from endoked.batching import BatchOutput, run_batches
from endoked.imaging import encode_png, read_mask_u8, read_rgb
from endoked.prompt_seg import BoxPromptSegmenter
from endoked.scoring import dice
from endoked.seg.config import SegConfig
from endoked.seg.data import SegItem
from endoked.seg.predict import Predictor, given_or_builder, to_png_bytes

logger = logging.getLogger(__name__)


@dataclass
class RefinedMask:
    """Outcome of :func:`refine_prediction` for one image.

    Attributes:
        mask: ``(H, W) bool`` new pseudo mask, or None when the image was dropped.
        reason: drop reason (the box filter's) or None.
        score: mean probability inside the mask (or the segmenter's mean score).
        boxes_xyxy: ``(N, 4) float32`` boxes kept, image pixels.
    """

    mask: np.ndarray | None
    reason: str | None
    score: float
    boxes_xyxy: np.ndarray


def refine_prediction(
    prob: np.ndarray, cfg: SegConfig, image: np.ndarray | None = None, segmenter: BoxPromptSegmenter | None = None
) -> RefinedMask:
    """Turn a probability map into a pseudo mask under the box filters.

    Args:
        prob: ``(H, W) float`` probabilities in [0, 1].
        cfg: threshold and filter settings.
        image: ``(H, W, 3) uint8`` RGB, needed with a segmenter.
        segmenter: box-prompted segmenter run on the kept boxes; None keeps the thresholded components.
    """
    from endoked.boxes import BoxFilter, boxes_from_cam

    binary = (prob >= cfg.refine.boxes.threshold).astype(np.float32)
    params = BoxFilter(
        threshold=0.5,
        min_area=cfg.refine.boxes.min_area,
        max_area=cfg.refine.boxes.max_area,
        drop_border=cfg.refine.boxes.drop_border,
        max_components=cfg.refine.boxes.max_components,
        min_component_area=cfg.refine.boxes.min_component_area,
        multi_box=True,
    )
    result = boxes_from_cam(binary, params)
    if result.reason is not None:
        return RefinedMask(None, result.reason, 0.0, np.zeros((0, 4), np.float32))
    boxes = np.stack([b.as_array() for b in result.boxes]).astype(np.float32)
    if segmenter is not None:
        if image is None:
            raise ValueError("refine_prediction needs the image when a segmenter is given")
        segmenter.set_image(image)
        masks, scores = segmenter.predict(boxes)
        segmenter.reset_image()
        mask = np.asarray(masks.any(axis=0), dtype=bool)
        score = float(scores.mean()) if len(scores) else 0.0
    else:
        mask = np.zeros(prob.shape, dtype=bool)
        for x0, y0, x1, y1 in boxes.astype(int):
            mask[y0:y1, x0:x1] |= binary[y0:y1, x0:x1] > 0
        score = float(prob[mask].mean()) if mask.any() else 0.0
    if not mask.any():
        return RefinedMask(None, "empty_mask", 0.0, boxes)
    return RefinedMask(mask, None, score, boxes)


RECORDS = "refine/records"  # one JSON record per image (the round's record and where its mask went)


@dataclass
class RefineState:
    """The state of :func:`process_batch`: the previous round's network, the optional segmenter, the settings and
    whether the round is gated (its network may neither replace nor add a mask)."""

    predictor: Predictor
    segmenter: BoxPromptSegmenter | None
    cfg: SegConfig
    gated: bool = False


def setup(
    predictor: Callable[[], Predictor],
    segmenter: Callable[[], BoxPromptSegmenter] | None,
    cfg: SegConfig,
    gated: bool = False,
) -> RefineState:
    """Build the :class:`RefineState` (``predictor``/``segmenter`` are builders, called where the batches run)."""
    return RefineState(predictor(), segmenter() if segmenter is not None else None, cfg, gated)


def process_batch(rows: list[dict[str, Any]], state: RefineState) -> BatchOutput:
    """The batch core of a refinement round: rows ``index``, ``key``, ``image``, ``mask`` (the current pseudo
    mask file, None for an image outside the pool) and ``truth`` (a true mask file or None) -> one
    ``refine/records`` row per image (``record``: the round's record; ``mask_file``: the new mask, written as
    file ``<index>.png``; ``keep_old``: the current mask stays in the pool)."""
    cfg = state.cfg
    out = BatchOutput(tables={RECORDS: []})
    images = [read_rgb(row["image"]) for row in rows]
    for row, img, prob in zip(rows, images, state.predictor.predict(images), strict=True):
        mask = row["mask"]
        res = refine_prediction(prob, cfg, img, state.segmenter)
        candidate = res.mask  # the filtered prediction, before the score and update rules
        if mask is None and res.mask is not None and state.gated:
            res = RefinedMask(None, "round_gated", res.score, res.boxes_xyxy)
        if mask is None and res.mask is not None and res.score < cfg.refine.min_score_new:
            res = RefinedMask(None, "low_score", res.score, res.boxes_xyxy)
        prev = read_mask_u8(mask) > 0 if mask is not None else None
        agreement = dice(res.mask, prev) if res.mask is not None and prev is not None else None
        # agreement exists exactly when a pool image got a prediction; the update rule may refuse it
        kept_prev = agreement is not None and (
            state.gated
            or cfg.refine.update == "never"
            or (cfg.refine.update == "agree" and agreement < cfg.refine.min_agreement)
        )
        if kept_prev:
            res = RefinedMask(None, "kept_previous", res.score, res.boxes_xyxy)
        rec: dict[str, Any] = {
            "key": row["key"],
            "kept": res.mask is not None,
            "new": mask is None,
            "reason": res.reason,
            "score": res.score,
            "dice_prev": agreement,
        }
        mask_file = None
        if res.mask is not None:
            mask_file = f"{int(row['index']):06d}.png"
            out.files[mask_file] = encode_png(to_png_bytes(res.mask.astype(np.float32)))
            rec["area"] = float(res.mask.mean())
        if row["truth"] is not None:
            gt = read_mask_u8(row["truth"]) > 0
            before = dice(prev, gt) if prev is not None else None
            rec["dice_truth_prev"] = before
            rec["dice_truth"] = dice(res.mask, gt) if res.mask is not None else before
            rec["dice_truth_candidate"] = dice(candidate, gt) if candidate is not None else None
        keep_old = (cfg.refine.keep_previous or kept_prev or state.gated) and mask is not None
        out.tables[RECORDS].append({"record": rec, "mask_file": mask_file, "keep_old": keep_old})
    return out


def refine_pool(
    items: Sequence[SegItem],
    predictor: Predictor | Callable[[], Predictor],
    cfg: SegConfig,
    mask_dir: Path,
    *,
    segmenter: BoxPromptSegmenter | Callable[[], BoxPromptSegmenter] | None = None,
    truth: Mapping[str, Path] | None = None,
    batch_size: int = 8,
    progress: bool = True,
    unlabelled: Sequence[tuple[str, Path]] = (),
    chunk_dir: Path | None = None,
    gated: bool = False,
) -> tuple[list[SegItem], list[dict[str, Any]], dict[str, Any]]:
    """One refinement round over a pool, run by the resumable batch driver
    (:func:`endoked.batching.run_batches`: :func:`process_batch` in chunks of ``batch_size`` images).

    Args:
        items: the current pool (image + current pseudo mask).
        predictor: the network of the previous round, or a function that builds it where the batches run.
        cfg: settings.
        mask_dir: where the new masks are written (``<index>.png``, 0/255, image size).
        segmenter: optional box-prompted segmenter (or a function that builds it).
        truth: key -> true mask file, to measure pseudo-mask quality (e.g. synthetic archives).
        batch_size: images per forward pass (and per resumable chunk).
        progress: show a progress bar.
        unlabelled: ``(key, image)`` of positive images without a pseudo mask yet; one whose prediction passes
            the filters and ``cfg.refine.min_score_new`` joins the pool (the pool grows round by round).
        chunk_dir: the finished chunks (default: ``<mask_dir>_chunks`` beside ``mask_dir``).
        gated: the round's network failed the truth-free gate (``cfg.refine.min_val_dice``): every image is still
            predicted and recorded (candidate figures), but no mask is replaced and no image joins the pool.

    Returns:
        The next pool, one record per image (``key``, ``kept``, ``new``, ``reason``, ``score``, ``dice_prev``
        and, with ``truth``, ``dice_truth``/``dice_truth_prev``), and round statistics.
    """
    mask_dir.mkdir(parents=True, exist_ok=True)
    work: list[tuple[str, Path, Path | None]] = [(it.key, it.image, it.mask) for it in items]
    work += [(key, image, None) for key, image in unlabelled]
    rows = [
        {
            "index": i,
            "key": key,
            "image": str(image),
            "mask": str(mask) if mask is not None else None,
            "truth": str(truth[key]) if truth and key in truth else None,
        }
        for i, (key, image, mask) in enumerate(work)
    ]
    seg_setup = None if segmenter is None else given_or_builder(segmenter)
    done = run_batches(
        rows,
        setup=partial(setup, given_or_builder(predictor), seg_setup, cfg, gated),
        process_batch=process_batch,
        outputs=(RECORDS,),
        chunk_dir=chunk_dir or mask_dir.with_name(f"{mask_dir.name}_chunks"),
        run_root=mask_dir,
        chunk_size=batch_size,
        desc="refine pseudo labels",
        progress=progress,
    )
    new_items: list[SegItem] = []
    for (key, image, mask), out in zip(work, done.tables[RECORDS], strict=True):
        if out["mask_file"] is not None:
            new_items.append(SegItem(key, image, mask_dir / out["mask_file"]))
        elif out["keep_old"] and mask is not None:
            new_items.append(SegItem(key, image, mask))
    records = [out["record"] for out in done.tables[RECORDS]]
    return new_items, records, round_stats(records)


def round_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts, drop reasons, mean area/score/agreement with the previous masks, and truth Dice when known."""
    kept = [r for r in records if r["kept"]]
    reasons: dict[str, int] = {}
    for r in records:
        if r["reason"]:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1

    def mean(key: str, rows: Sequence[Mapping[str, Any]]) -> float | None:
        vals = [float(r[key]) for r in rows if r.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    old = [r for r in records if not r.get("new")]
    return {
        "n_images": len(records),
        "n_updated": sum(1 for r in kept if not r.get("new")),
        "n_added": sum(1 for r in kept if r.get("new")),
        "n_dropped": len(records) - len(kept),
        "n_pool_before": len(old),
        "drop_reasons": reasons,
        "mean_area": mean("area", kept),
        "mean_score": mean("score", kept),
        "mean_dice_vs_previous": mean("dice_prev", kept),
        "mean_dice_truth_before": mean("dice_truth_prev", old),
        "mean_dice_truth_after": mean("dice_truth", [r for r in records if r["kept"] or not r.get("new")]),
    }
