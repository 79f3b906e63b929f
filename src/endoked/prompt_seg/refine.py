"""From CAMs to masks: candidate prompts, selection by consensus among candidates (default) or by mask–CAM
agreement around the CAM box, box → mask → box refinement and mask quality measures (pure numpy; the
segmenter is passed in)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from endoked.boxes import BoxFilter, box_iou, box_of_mask, boxes_from_cam
from endoked.prompt_seg.base import BoxPromptSegmenter


@dataclass
class MaskResult:
    """One pseudo mask.

    Attributes:
        mask: ``(H, W) bool`` in the image frame.
        score: segmenter confidence (predicted IoU for SAM-family models).
        box: ``(4,) float32`` xyxy prompt that produced the mask.
        cam_agreement: soft IoU of the mask with the max-normalised CAM (``nan`` without a CAM).
        area_fraction: mask area over image area.
        box_fill: mask area over the prompt box's area.
        consensus: mean IoU of the mask with the masks of the other candidate prompts of its image (``nan``
            when it was not selected among candidates).
        rank: the selection score the mask won with (``nan`` without a selection).
    """

    mask: np.ndarray
    score: float
    box: np.ndarray
    cam_agreement: float
    area_fraction: float
    box_fill: float
    consensus: float = float("nan")
    rank: float = float("nan")


def clean_mask(mask: np.ndarray, keep_largest: bool = True, fill_holes: bool = True) -> np.ndarray:
    """Largest 8-connected component and/or holes filled, of an ``(H, W) bool`` mask."""
    out = np.asarray(mask, dtype=bool)
    if keep_largest and out.any():
        n, labels, stats, _ = cv2.connectedComponentsWithStats(out.astype(np.uint8), connectivity=8)
        if n > 2:
            out = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if fill_holes and out.any():
        out = ndimage.binary_fill_holes(out)
    return out


def soft_iou(cam: np.ndarray, mask: np.ndarray) -> float:
    """``sum(min(cam, mask)) / sum(max(cam, mask))`` for a ``[0, 1]`` map and a binary mask of one shape."""
    m = mask.astype(np.float32)
    den = float(np.maximum(cam, m).sum())
    return float(np.minimum(cam, m).sum() / den) if den > 0 else 0.0


def scale_box(box: np.ndarray, factor: float, size_hw: tuple[int, int]) -> np.ndarray:
    """A box scaled about its centre, clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * factor / 2, (y1 - y0) * factor / 2
    h, w = size_hw
    return np.array([max(0, cx - hw), max(0, cy - hh), min(w, cx + hw), min(h, cy + hh)], dtype=np.float32)


def candidate_boxes(
    box: np.ndarray, cam: np.ndarray | None, thresholds: Sequence[float], scales: Sequence[float]
) -> np.ndarray:
    """The CAM box plus alternatives: boxes of the CAM at other thresholds and scaled copies.

    Args:
        box: ``(4,)`` xyxy CAM box in image pixels.
        cam: ``(H, W)`` max-normalised CAM at image size, or ``None``.
        thresholds: CAM thresholds whose component overlapping ``box`` most gives a candidate.
        scales: factors for scaled copies of ``box``.

    Returns:
        ``(K, 4) float32``, the CAM box first; duplicates removed.
    """
    cands = [np.asarray(box, dtype=np.float32)]
    if cam is not None:
        h, w = cam.shape
        for t in thresholds:
            res = boxes_from_cam(
                cam,
                BoxFilter(
                    threshold=t, min_area=0.0, max_area=1.0, drop_border=False, max_components=None, multi_box=True
                ),
            )
            if not res.boxes:
                continue
            arr = np.stack([b.as_array() for b in res.boxes])
            ious = box_iou(box[None], arr)[0]
            if ious.max() > 0:
                cands.append(arr[int(ious.argmax())])
        size = (h, w)
    else:
        size = (int(1e9), int(1e9))
    cands.extend(scale_box(box, s, size) for s in scales)
    out: list[np.ndarray] = []
    for c in cands:
        if c[2] - c[0] >= 1 and c[3] - c[1] >= 1 and all(np.abs(c - o).max() > 0.5 for o in out):
            out.append(c)
    return np.stack(out).astype(np.float32)


def _measure(mask: np.ndarray, score: float, box: np.ndarray, cam: np.ndarray | None) -> MaskResult:
    h, w = mask.shape
    area = float(mask.sum())
    box_area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1.0)
    agreement = soft_iou(cam, mask) if cam is not None else float("nan")
    return MaskResult(
        mask, float(score), np.asarray(box, dtype=np.float32), agreement, area / (h * w), min(area / box_area, 1.0)
    )


def segment_box(
    seg: BoxPromptSegmenter,
    box: np.ndarray,
    cam: np.ndarray | None = None,
    thresholds: Sequence[float] = (),
    scales: Sequence[float] = (),
    weight_cam: float = 0.5,
    refine_iters: int = 0,
    keep_largest: bool = True,
    fill_holes: bool = True,
) -> MaskResult:
    """The mask for one CAM box on the image already set in ``seg``.

    Candidates (see :func:`candidate_boxes`) are decoded in one batch and ranked by
    ``(1 - weight_cam) * score + weight_cam * cam_agreement`` (the segmenter score alone without a CAM);
    the winner is then re-prompted with its own mask's box ``refine_iters`` times (stopping early when the
    box no longer moves), keeping a refined mask only if it does not rank lower.

    Args:
        seg: segmenter with the image set.
        box: ``(4,)`` xyxy CAM box in image pixels.
        cam: ``(H, W)`` max-normalised CAM at image size, or ``None``.
        thresholds, scales: candidate generation.
        weight_cam: weight of CAM agreement in the ranking.
        refine_iters: box → mask → box iterations.
        keep_largest, fill_holes: mask clean-up.
    """

    def rank(r: MaskResult) -> float:
        if cam is None or weight_cam == 0:
            return r.score
        return (1 - weight_cam) * r.score + weight_cam * r.cam_agreement

    def run(boxes: np.ndarray) -> list[MaskResult]:
        masks, scores = seg.predict(boxes)
        return [
            _measure(clean_mask(m, keep_largest, fill_holes), s, b, cam)
            for m, s, b in zip(masks, scores, boxes, strict=True)
        ]

    cands = (
        candidate_boxes(np.asarray(box, dtype=np.float32), cam, thresholds, scales)
        if (thresholds or scales)
        else np.asarray(box, dtype=np.float32)[None]
    )
    best = max(run(cands), key=rank)
    for _ in range(refine_iters):
        nb = box_of_mask(best.mask)
        if nb is None or box_iou(nb[None], best.box[None])[0, 0] > 0.95:
            break
        cand = run(nb[None])[0]
        if rank(cand) < rank(best):
            break
        best = cand
    return best


def cam_component_boxes(
    cam: np.ndarray, thresholds: Sequence[float], scales: Sequence[float] = (1.0,), min_area: float = 0.003
) -> np.ndarray:
    """Candidate prompts from a CAM alone: the box of every connected component of ``cam > t`` for each
    threshold ``t`` (components smaller than ``min_area`` of the image ignored), each scaled about its centre
    by every factor in ``scales``.

    Returns:
        ``(K, 4) float32`` xyxy boxes in the CAM's pixel frame, duplicates removed (possibly ``K = 0``).
    """
    h, w = cam.shape
    out: list[np.ndarray] = []
    for t in thresholds:
        res = boxes_from_cam(
            cam,
            BoxFilter(
                threshold=t,
                min_area=0.0,
                max_area=1.0,
                drop_border=False,
                max_components=None,
                min_component_area=min_area,
                multi_box=True,
            ),
        )
        for b in res.boxes:
            for s in scales:
                c = scale_box(b.as_array(), s, (h, w))
                if c[2] - c[0] >= 1 and c[3] - c[1] >= 1 and all(np.abs(c - o).max() > 0.5 for o in out):
                    out.append(c)
    return np.stack(out).astype(np.float32) if out else np.zeros((0, 4), np.float32)


def cam_peaks(cam: np.ndarray, peaks: int = 1, min_peak: float = 0.5) -> list[tuple[int, int]]:
    """The ``peaks`` strongest local maxima of ``cam`` as ``(y, x)``, strongest first.

    A maximum counts when it is the largest value within a window of 5 % of the shorter side and at least
    ``min_peak`` of the map's maximum; maxima closer than that window to a stronger one are dropped.
    """
    h, w = cam.shape
    top = float(cam.max()) if cam.size else 0.0
    if top <= 0 or peaks <= 0:
        return []
    k = max(3, round(min(h, w) * 0.05) | 1)
    m = np.asarray(cam, np.float32)
    local = (m >= cv2.dilate(m, np.ones((k, k), np.uint8))) & (m >= min_peak * top)
    ys, xs = np.nonzero(local)
    out: list[tuple[int, int]] = []
    for i in np.argsort(-m[ys, xs], kind="stable"):
        y, x = int(ys[i]), int(xs[i])
        if all(max(abs(y - py), abs(x - px)) > k for py, px in out):
            out.append((y, x))
            if len(out) == peaks:
                break
    return out


def cam_peak_boxes(cam: np.ndarray, sizes: Sequence[float], peaks: int = 1, min_peak: float = 0.5) -> np.ndarray:
    """Square prompts centred on the CAM's strongest peaks (:func:`cam_peaks`), one per size in ``sizes`` (the
    side as a share of the shorter image side), clipped to the image.

    The peak of a whole-frame CAM lands on the polyp far more often than the box of its thresholded region,
    which a small polyp leaves several times too large (docs/BENCHMARKS.md): boxes of several sizes around
    the peak let the segmenter find the object there, and the consensus among their masks picks its size.

    Returns:
        ``(K, 4) float32`` xyxy boxes in the CAM's pixel frame, strongest peak first (possibly ``K = 0``).
    """
    h, w = cam.shape
    side = float(min(h, w))
    out = [
        np.array(
            [
                max(0.0, x - s * side / 2),
                max(0.0, y - s * side / 2),
                min(w, x + s * side / 2),
                min(h, y + s * side / 2),
            ],
            np.float32,
        )
        for y, x in cam_peaks(cam, peaks, min_peak)
        for s in sizes
        if s > 0
    ]
    return np.stack(out) if out else np.zeros((0, 4), np.float32)


def merge_boxes(boxes: np.ndarray, iou_threshold: float = 0.98) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group near-identical prompts so that each group is decoded once.

    Boxes are visited in order; a box not yet in a group starts one and takes every later ungrouped box whose
    IoU with it exceeds ``iou_threshold`` (``>= 1`` merges nothing but exact copies never, i.e. no merging).

    Returns:
        ``reps``: ``(M, 4)`` the first box of every group, in order of first appearance; ``group``: ``(N,)``
        the group index of every box; ``counts``: ``(M,)`` boxes per group.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    group = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return boxes, group, np.zeros(0, dtype=np.int64)
    iou = box_iou(boxes, boxes)
    first: list[int] = []
    for i in range(n):
        if group[i] >= 0:
            continue
        members = (group < 0) & (iou[i] > iou_threshold)
        members[i] = True
        group[members] = len(first)
        first.append(i)
    return boxes[first], group, np.bincount(group, minlength=len(first))


def _nearest_grid(mask: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resampling of ``(N, H, W)`` masks to ``(N, size, size)``, index for index as
    ``cv2.INTER_NEAREST``: source pixel ``floor(i * (1 / (size / H)))`` in double precision, clipped (the exact
    ``i * H // size`` differs from it where the rounded scale falls just below an integer, e.g. 442 → 64)."""
    h, w = mask.shape[-2:]
    grid = np.arange(size, dtype=np.float64)
    rows = np.minimum(np.floor(grid * (1.0 / (size / h))).astype(np.intp), h - 1)
    cols = np.minimum(np.floor(grid * (1.0 / (size / w))).astype(np.intp), w - 1)
    return mask[:, rows][:, :, cols]


def mask_consensus(
    masks: Sequence[np.ndarray] | np.ndarray, size: int = 64, weights: np.ndarray | None = None
) -> np.ndarray:
    """For each mask, its mean IoU with all the other masks (computed at ``size``×``size``).

    A region that many different prompts converge to is the object the image shows; a mask only one
    prompt produces (a fold, a patch of mucosa, half a polyp) agrees with few others.

    Args:
        masks: ``N`` binary masks of one shape (any resolution covering the whole image).
        size: side of the grid the IoUs are computed on.
        weights: ``(N,)`` integer multiplicities (merged prompts, :func:`merge_boxes`): mask ``i`` stands for
            ``weights[i]`` identical candidates, so the result is exactly that of the unmerged list at each
            group's entries. Default: all 1.
    """
    n = len(masks)
    w = np.ones(n, np.float64) if weights is None else np.asarray(weights, np.float64).reshape(n)
    total = float(w.sum())
    if n == 0 or total < 2:
        return np.zeros(n, np.float32)
    stack = np.asarray(masks).astype(bool, copy=False)
    small = _nearest_grid(stack, size).reshape(n, -1).astype(np.float32)
    inter = small @ small.T
    area = small.sum(1)
    union = area[:, None] + area[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1.0), 0.0)
    np.fill_diagonal(iou, 0.0)
    # the other copies of a merged mask agree with it fully (IoU 1, or 0 for an empty mask)
    same = (w - 1) * (area > 0)
    return ((iou @ w + same) / (total - 1)).astype(np.float32)


@dataclass(frozen=True)
class Selection:
    """How :func:`select_mask` generates and ranks candidate prompts.

    ``rank = w_score · segmenter score + w_consensus · consensus + w_cam · CAM agreement``. Prompts whose
    boxes overlap by more than ``merge_iou`` IoU are decoded once and count with their multiplicity
    (:func:`merge_boxes`); with ``lowres_consensus`` (and ``w_cam = 0``) candidates are cleaned and compared
    on the segmenter's low-resolution logits, and only the winner is upsampled to the image.
    """

    thresholds: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.65, 0.8)
    scales: tuple[float, ...] = (0.8, 1.0, 1.25)
    min_component_area: float = 0.003
    w_score: float = 1.0
    w_consensus: float = 1.0
    w_cam: float = 0.0
    consensus_size: int = 64
    merge_iou: float = 0.98
    lowres_consensus: bool = True
    peak_sizes: tuple[float, ...] = ()
    peaks: int = 1
    peak_only: bool = False


def select_mask(
    seg: BoxPromptSegmenter,
    cam: np.ndarray | None,
    boxes: np.ndarray | None = None,
    sel: Selection | None = None,
    keep_largest: bool = True,
    fill_holes: bool = True,
) -> MaskResult | None:
    """The best mask of the image set in ``seg`` among many candidate prompts.

    Candidates are ``boxes`` (e.g. the cam stage's boxes) plus :func:`cam_component_boxes` of the CAM; all
    are decoded in one batch (the image embedding is computed once), cleaned, and ranked by
    ``sel``'s weighted sum of the segmenter's score, the consensus among candidates (:func:`mask_consensus`)
    and the CAM agreement. With ``sel.peak_sizes``, boxes centred on the CAM's peaks (:func:`cam_peak_boxes`)
    join the candidates, or are the only ones with ``sel.peak_only``. Returns ``None`` when there is no
    candidate.

    Args:
        seg: segmenter with the image set.
        cam: ``(H, W)`` max-normalised CAM at image size, or ``None``.
        boxes: ``(N, 4)`` extra xyxy prompts in image pixels.
        sel: candidate generation and ranking.
        keep_largest, fill_holes: mask clean-up.
    """
    sel = sel or Selection()
    only_peaks = sel.peak_only and bool(sel.peak_sizes) and cam is not None
    parts = [np.asarray(boxes, np.float32).reshape(-1, 4)] if boxes is not None and not only_peaks else []
    if cam is not None and not only_peaks:
        parts.append(cam_component_boxes(cam, sel.thresholds, sel.scales, sel.min_component_area))
    if cam is not None and sel.peak_sizes:
        parts.append(cam_peak_boxes(cam, sel.peak_sizes, sel.peaks))
    cands = np.concatenate(parts) if parts else np.zeros((0, 4), np.float32)
    cands = cands[(cands[:, 2] - cands[:, 0] >= 1) & (cands[:, 3] - cands[:, 1] >= 1)]
    if len(cands) == 0:
        return None
    reps, _, counts = merge_boxes(cands, sel.merge_iou)
    lowres = sel.lowres_consensus and not (cam is not None and sel.w_cam != 0) and hasattr(seg, "predict_lowres")
    if lowres:
        logits, scores = seg.predict_lowres(reps)
        small = [clean_mask(lg > 0, keep_largest, fill_holes) for lg in logits]
        cons = mask_consensus(small, sel.consensus_size, counts)
        ranks = sel.w_score * scores.astype(np.float64) + sel.w_consensus * cons.astype(np.float64)
        i = int(np.argmax(ranks))
        full = clean_mask(seg.upsample_logits(logits[i : i + 1])[0], keep_largest, fill_holes)
        best = _measure(full, scores[i], reps[i], cam)
        best.consensus = float(cons[i])
        best.rank = sel.w_score * best.score + sel.w_consensus * best.consensus
        return best
    masks, scores = seg.predict(reps)
    results = [
        _measure(clean_mask(m, keep_largest, fill_holes), s, b, cam)
        for m, s, b in zip(masks, scores, reps, strict=True)
    ]
    cons = mask_consensus([r.mask for r in results], sel.consensus_size, counts)
    for r, c in zip(results, cons, strict=True):
        r.consensus = float(c)
        agree = 0.0 if np.isnan(r.cam_agreement) else r.cam_agreement
        r.rank = sel.w_score * r.score + sel.w_consensus * r.consensus + sel.w_cam * agree
    return max(results, key=lambda r: r.rank)


def passes_filter(
    r: MaskResult,
    min_score: float = 0.0,
    min_cam_agreement: float = 0.0,
    min_area_fraction: float = 0.0,
    max_area_fraction: float = 1.0,
    min_box_fill: float = 0.0,
    min_rank: float = 0.0,
) -> str | None:
    """``None`` when a mask passes the pseudo-label filter, else the reason it fails."""
    if not r.mask.any():
        return "empty_mask"
    if min_rank > 0 and not (r.rank >= min_rank):
        return "low_rank"
    if r.score < min_score:
        return "low_score"
    if min_cam_agreement > 0 and not (r.cam_agreement >= min_cam_agreement):
        return "low_cam_agreement"
    if r.area_fraction < min_area_fraction:
        return "mask_too_small"
    if r.area_fraction > max_area_fraction:
        return "mask_too_large"
    if r.box_fill < min_box_fill:
        return "low_box_fill"
    return None
