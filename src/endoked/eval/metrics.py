"""Per-image polyp-segmentation metrics, defined as the PraNet MATLAB evaluation toolbox defines them.

Pure functions on arrays. Conventions (toolbox ``main.m``):

* The prediction is a map in [0, 1] (``im2double``, then ``mapminmax`` to [0, 1]); the ground truth is boolean.
* 256 thresholds ``1:-1/255:0`` (:data:`THRESHOLDS`, descending). Dice, IoU, precision... binarise with
  ``map >= t`` (``Fmeasure_calu``); the E-measure curve binarises with ``map > t`` (PraNet ``main.m``).
* Per threshold, an image without a true positive scores Dice = IoU = 0 -- also when the mask and the
  binarised map are both empty (``empty_score="one"`` makes that case 1 instead).
* Set-level figures: per-image curves are averaged over images, then mean (``meanDice``) or max
  (``maxDice``) over thresholds.

References (metric definitions):
    S-measure: Fan et al., "Structure-measure: A new way to evaluate foreground maps", ICCV 2017.
    E-measure: Fan et al., "Enhanced-alignment measure for binary foreground map evaluation", IJCAI 2018.
    Weighted F-measure: Margolin et al., "How to evaluate foreground maps?", CVPR 2014.
    Toolbox: Fan et al., "PraNet: Parallel reverse attention network for polyp segmentation", MICCAI 2020.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from py_sod_metrics import Smeasure
from scipy.ndimage import correlate1d, distance_transform_edt

EPS: float = float(np.spacing(1))  # MATLAB eps
N_THRESHOLDS = 256


def matlab_thresholds() -> np.ndarray:
    """The toolbox's threshold grid ``1:-1/255:0``, element for element as MATLAB's colon operator builds it.

    MATLAB fills ``a:d:b`` from both ends (``a + k*d`` for the first half, ``b - k*d`` for the second), so a
    few grid values differ from ``k/255`` in the last bit; a map value of exactly ``k/255`` can then fall just
    below the grid value, as it does in MATLAB.

    Returns:
        (256,) float64, descending from 1.0 to 0.0.
    """
    n = N_THRESHOLDS - 1
    d = -1.0 / 255.0
    out = np.empty(N_THRESHOLDS, dtype=np.float64)
    k = np.arange(n // 2 + 1, dtype=np.float64)
    out[: n // 2 + 1] = 1.0 + k * d
    out[n - np.arange(n // 2 + 1)] = 0.0 - k * d
    return out


THRESHOLDS: np.ndarray = matlab_thresholds()
_ASC_PADDED: np.ndarray = np.concatenate([THRESHOLDS[::-1], [np.inf, np.inf]])


def mapminmax(pred: np.ndarray) -> np.ndarray:
    """Min-max normalise a map to [0, 1] as MATLAB ``mapminmax(x, 0, 1)`` does; a constant map is unchanged.

    Args:
        pred: (H, W) float64 in [0, 1].

    Returns:
        (H, W) float64 in [0, 1].
    """
    lo, hi = float(pred.min()), float(pred.max())
    if hi == lo:
        return pred
    gain = 1.0 / (hi - lo)
    return np.minimum((pred - lo) * gain, 1.0)


@dataclass
class ThresholdCounts:
    """Pixel counts of a binarised map at every threshold of :data:`THRESHOLDS` (same order).

    Attributes:
        tp: (256,) int64, foreground pixels of the mask that the binarised map covers.
        fp: (256,) int64, background pixels that the binarised map covers.
        n_fg: foreground pixels of the mask.
        n: all pixels.
    """

    tp: np.ndarray
    fp: np.ndarray
    n_fg: int
    n: int


def _passed(pred: np.ndarray, strict: bool) -> np.ndarray:
    """Number of ascending thresholds each pixel passes (``>=``, or ``>`` when strict); flat intp array.

    Same result as ``np.searchsorted(ascending_grid, pred, side)``, computed from ``floor(pred * 255)`` and two
    comparisons with the grid (the grid is within a few units in the last place of ``k/255``), about 3x faster.
    """
    v = pred.ravel()
    k = np.minimum((v * 255.0).astype(np.intp), N_THRESHOLDS - 1)
    t0, t1 = _ASC_PADDED[k], _ASC_PADDED[k + 1]
    if strict:
        return k + (t0 < v) + (t1 < v)
    return k + (t0 <= v) + (t1 <= v)


def threshold_counts(pred: np.ndarray, gt: np.ndarray, strict: bool = False) -> ThresholdCounts:
    """Count TP/FP of ``pred >= t`` (or ``pred > t`` when ``strict``) for all 256 thresholds at once.

    Args:
        pred: (H, W) float64 in [0, 1].
        gt: (H, W) bool.
        strict: use ``>`` instead of ``>=``.

    Returns:
        The counts, in the order of :data:`THRESHOLDS` (descending thresholds).
    """
    # Number of ascending thresholds that each pixel passes, binned by mask class in one pass.
    passed = _passed(pred, strict)
    hist = np.bincount(passed + (N_THRESHOLDS + 1) * gt.ravel(), minlength=2 * (N_THRESHOLDS + 1))
    hist_bg, hist_fg = hist[: N_THRESHOLDS + 1], hist[N_THRESHOLDS + 1 :]
    # count at ascending threshold i = pixels that passed more than i thresholds.
    fg_asc = np.cumsum(hist_fg[::-1])[::-1][1:]
    bg_asc = np.cumsum(hist_bg[::-1])[::-1][1:]
    return ThresholdCounts(
        tp=fg_asc[::-1].astype(np.int64), fp=bg_asc[::-1].astype(np.int64), n_fg=int(hist_fg.sum()), n=int(gt.size)
    )


def dice_iou(counts: ThresholdCounts, empty_score: Literal["zero", "one"] = "zero") -> tuple[np.ndarray, np.ndarray]:
    """Dice and IoU at every threshold as ``Fmeasure_calu``: 0 when there is no true positive.

    Args:
        counts: counts from :func:`threshold_counts` (or any TP/FP arrays).
        empty_score: value where mask and binarised map are both empty ("zero" as the toolbox, or "one").

    Returns:
        (dice, iou), each float64 with the shape of ``counts.tp``.
    """
    tp = counts.tp.astype(np.float64)
    n_pred = tp + counts.fp
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(tp > 0, 2.0 * tp / (counts.n_fg + n_pred), 0.0)
        iou = np.where(tp > 0, tp / (counts.n_fg + counts.fp), 0.0)
    if empty_score == "one" and counts.n_fg == 0:
        empty = n_pred == 0
        dice = np.where(empty, 1.0, dice)
        iou = np.where(empty, 1.0, iou)
    return dice, iou


def emeasure_from_counts(counts: ThresholdCounts) -> np.ndarray:
    """E-measure (``Enhancedmeasure``) of binarised maps given only their TP/FP counts.

    The enhanced-alignment matrix takes one value per (map, mask) pixel class, so the score is a weighted sum
    of four constants; the toolbox's special cases (all-background mask: mean of ``1 - FM``; all-foreground
    mask: mean of ``FM``) and its ``w*h - 1 + eps`` denominator are kept.

    Returns:
        float64 with the shape of ``counts.tp``.
    """
    n, n_fg = counts.n, counts.n_fg
    tp = counts.tp.astype(np.float64)
    fp = counts.fp.astype(np.float64)
    n_pred = tp + fp
    if n_fg == 0:
        total = n - n_pred
    elif n_fg == n:
        total = n_pred
    else:
        fn = n_fg - tp
        tn = n - n_pred - fn
        mu_pred = n_pred / n
        mu_gt = n_fg / n
        total = np.zeros_like(tp)
        for numel, a, b in (
            (tp, 1.0 - mu_pred, 1.0 - mu_gt),
            (fp, 1.0 - mu_pred, -mu_gt),
            (fn, -mu_pred, 1.0 - mu_gt),
            (tn, -mu_pred, -mu_gt),
        ):
            align = 2.0 * a * b / (a * a + b * b + EPS)
            total = total + numel * (align + 1.0) ** 2 / 4.0
    return np.asarray(total / (n - 1 + EPS), dtype=np.float64)


def _gauss_1d(size: int = 7, sigma: float = 5.0) -> np.ndarray:
    """1-D factor of MATLAB ``fspecial('gaussian', size, sigma)`` (the 2-D kernel is its outer product)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


_GAUSS = _gauss_1d()


def weighted_fmeasure(pred: np.ndarray, gt: np.ndarray, beta2: float = 1.0) -> float:
    """Weighted F-measure (``original_WFb``, Margolin et al. CVPR 2014).

    Same computation as PySODMetrics ``WeightedFmeasure.cal_wfm``, with the separable 7x7 Gaussian (sigma 5)
    applied as two 1-D passes (zero padding, as ``imfilter``), the exact Euclidean distance transform of OpenCV,
    and the nearest-foreground search restricted to the mask's bounding box: equal to 1e-9, about twice as fast.
    A mask without foreground scores 0 (the toolbox has no value for it; PySODMetrics returns 0).

    Args:
        pred: (H, W) float64 in [0, 1].
        gt: (H, W) bool.
        beta2: beta^2.
    """
    if not gt.any():
        return 0.0
    gtf = gt.astype(np.float64)
    err = np.abs(pred - gtf)
    # Distance of every background pixel to the mask (exact Euclidean, as bwdist).
    dst = cv2.distanceTransform((~gt).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)
    # Background pixels take the error of their nearest foreground pixel. Only pixels within the filter's
    # reach (3 px) of the mask matter, so the nearest-pixel search runs on the mask's bounding box + 4 px.
    h, w = gt.shape
    rows, cols = np.flatnonzero(gt.any(axis=1)), np.flatnonzero(gt.any(axis=0))
    y0, y1 = max(int(rows[0]) - 4, 0), min(int(rows[-1]) + 5, h)
    x0, x1 = max(int(cols[0]) - 4, 0), min(int(cols[-1]) + 5, w)
    idx = distance_transform_edt(~gt[y0:y1, x0:x1], return_distances=False, return_indices=True)
    err_t = err.copy()
    sub = err[y0:y1, x0:x1]
    err_t[y0:y1, x0:x1] = sub.ravel()[(idx[0] * (x1 - x0) + idx[1]).ravel()].reshape(sub.shape)
    err_a = correlate1d(correlate1d(err_t, _GAUSS, axis=0, mode="constant"), _GAUSS, axis=1, mode="constant")
    min_e = np.where(gt & (err_a < err), err_a, err)
    weight = np.where(gt, 1.0, 2.0 - np.exp(math.log(0.5) / 5.0 * dst))
    ew = min_e * weight
    n_fg = float(np.count_nonzero(gt))
    ew_fg = float(ew[gt].sum())
    tpw = n_fg - ew_fg
    fpw = float(ew[~gt].sum())
    recall = 1.0 - ew_fg / n_fg
    precision = tpw / (tpw + fpw + EPS)
    return float((1.0 + beta2) * recall * precision / (recall + beta2 * precision + EPS))


class _ToolboxSmeasure(Smeasure):  # type: ignore[misc]
    """PySODMetrics S-measure with the toolbox's centroid rounding.

    MATLAB ``round`` takes halves away from zero on the 1-based centroid; PySODMetrics rounds the 0-based
    centroid with ``np.round`` (halves to even), which splits the regions one pixel off when the centroid's
    0-based coordinate is exactly an even integer + 0.5 (symmetric masks of even width).
    """

    def region(self, pred: np.ndarray, gt: np.ndarray) -> float:
        h, w = gt.shape
        area = h * w
        if not gt.any():
            cy, cx = math.floor(h / 2 + 0.5), math.floor(w / 2 + 0.5)
        else:
            ys, xs = np.nonzero(gt)
            cy = math.floor(float(ys.mean()) + 1.0 + 0.5)
            cx = math.floor(float(xs.mean()) + 1.0 + 0.5)
        w_lt = cx * cy / area
        w_rt = cy * (w - cx) / area
        w_lb = (h - cy) * cx / area
        w_rb = 1.0 - w_lt - w_rt - w_lb
        return float(
            self.ssim(pred[:cy, :cx], gt[:cy, :cx]) * w_lt
            + self.ssim(pred[:cy, cx:], gt[:cy, cx:]) * w_rt
            + self.ssim(pred[cy:, :cx], gt[cy:, :cx]) * w_lb
            + self.ssim(pred[cy:, cx:], gt[cy:, cx:]) * w_rb
        )


def smeasure(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.5) -> float:
    """S-measure (``StructureMeasure``, Fan et al. ICCV 2017), via PySODMetrics with toolbox centroid rounding.

    All-background mask: ``1 - mean(pred)``; all-foreground mask: ``mean(pred)``; otherwise
    ``max(0, alpha * S_object + (1 - alpha) * S_region)``.

    Args:
        pred: (H, W) float64 in [0, 1].
        gt: (H, W) bool.
        alpha: weight of the object term.
    """
    return float(_ToolboxSmeasure(alpha=alpha).cal_sm(pred, gt))


@dataclass
class ImageScore:
    """Scores of one (map, mask) pair.

    Attributes:
        dice_curve, iou_curve, e_curve: (256,) float64 at :data:`THRESHOLDS`.
        scalars: per-image figures (keys: ``dice``/``iou`` = mean over thresholds, ``max_dice``, ``dice_05``,
            ``iou_05``, ``s_alpha``, ``wf_beta``, ``mean_e``, ``max_e``, ``adaptive_e``, ``mae``, ``tp_05``,
            ``fp_05``, ``fn_05``, ``tn_05``, ``n_fg``, ``height``, ``width``).
    """

    dice_curve: np.ndarray
    iou_curve: np.ndarray
    e_curve: np.ndarray
    scalars: dict[str, float] = field(default_factory=dict)


def _binary_counts(binary: np.ndarray, gt: np.ndarray, n_fg: int) -> ThresholdCounts:
    tp = int(np.count_nonzero(binary & gt))
    fp = int(np.count_nonzero(binary)) - tp
    return ThresholdCounts(tp=np.array([tp]), fp=np.array([fp]), n_fg=n_fg, n=int(gt.size))


def score_pair(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    alpha: float = 0.5,
    beta2: float = 1.0,
    binary_threshold: float = 0.5,
    emeasure_binarize: Literal[">", ">="] = ">",
    empty_score: Literal["zero", "one"] = "zero",
) -> ImageScore:
    """Score one normalised map against its mask with every metric.

    Args:
        pred: (H, W) float64 in [0, 1], already normalised (see :mod:`endoked.eval.inputs`).
        gt: (H, W) bool, same shape.
        alpha: S-measure weight.
        beta2: weighted F-measure beta^2.
        binary_threshold: threshold of ``dice_05``/``iou_05`` (``pred >= t``).
        emeasure_binarize: ``">"`` (toolbox) or ``">="`` for the E-measure curve.
        empty_score: Dice/IoU where mask and binarised map are both empty.

    Returns:
        The per-image curves and scalars.
    """
    counts = threshold_counts(pred, gt)
    dice, iou = dice_iou(counts, empty_score)
    e_counts = threshold_counts(pred, gt, strict=True) if emeasure_binarize == ">" else counts
    e_curve = emeasure_from_counts(e_counts)
    n_fg = counts.n_fg
    binary = _binary_counts(pred >= binary_threshold, gt, n_fg)
    d05, i05 = dice_iou(binary, empty_score)
    adaptive_t = min(2.0 * float(pred.mean()), 1.0)
    e_adp = emeasure_from_counts(_binary_counts(pred >= adaptive_t, gt, n_fg))
    tp05, fp05 = int(binary.tp[0]), int(binary.fp[0])
    scalars = {
        "dice": float(dice.mean()),
        "iou": float(iou.mean()),
        "max_dice": float(dice.max()),
        "dice_05": float(d05[0]),
        "iou_05": float(i05[0]),
        "s_alpha": smeasure(pred, gt, alpha),
        "wf_beta": weighted_fmeasure(pred, gt, beta2),
        "mean_e": float(e_curve.mean()),
        "max_e": float(e_curve.max()),
        "adaptive_e": float(e_adp[0]),
        "mae": float(np.abs(pred - gt).mean()),
        "tp_05": tp05,
        "fp_05": fp05,
        "fn_05": n_fg - tp05,
        "tn_05": gt.size - n_fg - fp05,
        "n_fg": n_fg,
        "height": gt.shape[0],
        "width": gt.shape[1],
    }
    return ImageScore(dice_curve=dice, iou_curve=iou, e_curve=e_curve, scalars=scalars)
