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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from endoked.imaging import read_mask_u8, read_rgb
from endoked.prompt_seg import BoxPromptSegmenter
from endoked.scoring import dice
from endoked.seg.config import SegConfig
from endoked.seg.data import SegItem
from endoked.seg.predict import Predictor, save_map

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


def refine_pool(
    items: Sequence[SegItem],
    predictor: Predictor,
    cfg: SegConfig,
    mask_dir: Path,
    *,
    segmenter: BoxPromptSegmenter | None = None,
    truth: Mapping[str, Path] | None = None,
    batch_size: int = 8,
    progress: bool = True,
    unlabelled: Sequence[tuple[str, Path]] = (),
) -> tuple[list[SegItem], list[dict[str, Any]], dict[str, Any]]:
    """One refinement round over a pool.

    Args:
        items: the current pool (image + current pseudo mask).
        predictor: the network of the previous round.
        cfg: settings.
        mask_dir: where the new masks are written (``<index>.png``, 0/255, image size).
        segmenter: optional box-prompted segmenter.
        truth: key -> true mask file, to measure pseudo-mask quality (e.g. synthetic archives).
        batch_size: images per forward pass.
        progress: show a progress bar.
        unlabelled: ``(key, image)`` of positive images without a pseudo mask yet; one whose prediction passes
            the filters and ``cfg.refine.min_score_new`` joins the pool (the pool grows round by round).

    Returns:
        The next pool, one record per image (``key``, ``kept``, ``new``, ``reason``, ``score``, ``dice_prev``
        and, with ``truth``, ``dice_truth``/``dice_truth_prev``), and round statistics.
    """
    from endoked.progress import bar

    mask_dir.mkdir(parents=True, exist_ok=True)
    new_items: list[SegItem] = []
    records: list[dict[str, Any]] = []
    work: list[tuple[str, Path, Path | None]] = [(it.key, it.image, it.mask) for it in items]
    work += [(key, image, None) for key, image in unlabelled]
    with bar(len(work), desc="refine pseudo labels", unit="img", enabled=progress) as pbar:
        for start in range(0, len(work), batch_size):
            chunk = work[start : start + batch_size]
            images = [read_rgb(image) for _, image, _ in chunk]
            for j, ((key, image, mask), img, prob) in enumerate(
                zip(chunk, images, predictor.predict(images), strict=True)
            ):
                res = refine_prediction(prob, cfg, img, segmenter)
                candidate = res.mask  # the filtered prediction, before the score and update rules
                if mask is None and res.mask is not None and res.score < cfg.refine.min_score_new:
                    res = RefinedMask(None, "low_score", res.score, res.boxes_xyxy)
                prev = read_mask_u8(mask) > 0 if mask is not None else None
                agreement = dice(res.mask, prev) if res.mask is not None and prev is not None else None
                # agreement exists exactly when a pool image got a prediction; the update rule may refuse it
                kept_prev = agreement is not None and (
                    cfg.refine.update == "never"
                    or (cfg.refine.update == "agree" and agreement < cfg.refine.min_agreement)
                )
                if kept_prev:
                    res = RefinedMask(None, "kept_previous", res.score, res.boxes_xyxy)
                rec: dict[str, Any] = {
                    "key": key,
                    "kept": res.mask is not None,
                    "new": mask is None,
                    "reason": res.reason,
                    "score": res.score,
                    "dice_prev": agreement,
                }
                if res.mask is not None:
                    path = save_map(res.mask.astype(np.float32), mask_dir / f"{start + j:06d}.png")
                    new_items.append(SegItem(key, image, path))
                    rec["area"] = float(res.mask.mean())
                elif (cfg.refine.keep_previous or kept_prev) and mask is not None:
                    new_items.append(SegItem(key, image, mask))
                if truth and key in truth:
                    gt = read_mask_u8(truth[key]) > 0
                    before = dice(prev, gt) if prev is not None else None
                    rec["dice_truth_prev"] = before
                    rec["dice_truth"] = dice(res.mask, gt) if res.mask is not None else before
                    rec["dice_truth_candidate"] = dice(candidate, gt) if candidate is not None else None
                records.append(rec)
            pbar.update(len(chunk))
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
