"""The metric engine against brute-force toolbox definitions and against PySODMetrics.

Where PySODMetrics departs from the toolbox, a test shows the case:
* threshold grid (uint8 truncation vs MATLAB's ``1:-1/255:0``),
* E-measure binarisation (``>=`` vs the PraNet toolbox's ``>``),
* S-measure centroid rounding (``np.round`` halves-to-even vs MATLAB ``round``).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from py_sod_metrics import DICEHandler, Emeasure, FmeasureV2, Smeasure, WeightedFmeasure

from endoked.eval.metrics import (
    THRESHOLDS,
    dice_iou,
    emeasure_from_counts,
    mapminmax,
    smeasure,
    threshold_counts,
    weighted_fmeasure,
)

EPS = float(np.spacing(1))


def blob_pair(seed: int, h: int = 40, w: int = 52) -> tuple[np.ndarray, np.ndarray]:
    """A random elliptic mask and a noisy uint8 map of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.uniform(8, h - 8), rng.uniform(8, w - 8)
    gt = ((yy - cy) / rng.uniform(3, 12)) ** 2 + ((xx - cx) / rng.uniform(3, 12)) ** 2 < 1
    noisy = gt * rng.uniform(100, 255) + rng.normal(0, 60, (h, w)) + np.roll(gt, int(rng.integers(-3, 4)), 1) * 60
    return np.clip(noisy, 0, 255).astype(np.uint8), gt


def brute_dice_iou_e(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Direct transcription of Fmeasure_calu (>=) and Enhancedmeasure (on map > t), one threshold at a time."""
    dice, iou, e = [], [], []
    n_fg = gt.sum()
    for t in THRESHOLDS:
        b = pred >= t
        tp = np.sum(b & gt)
        dice.append(0.0 if tp == 0 else 2 * tp / (n_fg + b.sum()))
        iou.append(0.0 if tp == 0 else tp / (n_fg + np.sum(b & ~gt)))
        fm = (pred > t).astype(np.float64)
        g = gt.astype(np.float64)
        if g.sum() == 0:
            enh = 1.0 - fm
        elif (~gt).sum() == 0:
            enh = fm
        else:
            a, c = fm - fm.mean(), g - g.mean()
            enh = ((2 * a * c / (a * a + c * c + EPS)) + 1) ** 2 / 4
        e.append(enh.sum() / (gt.size - 1 + EPS))
    return np.array(dice), np.array(iou), np.array(e)


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_curves_equal_brute_force(seed: int) -> None:
    raw, gt = blob_pair(seed)
    pred = mapminmax(raw / 255.0)
    dice, iou = dice_iou(threshold_counts(pred, gt))
    e = emeasure_from_counts(threshold_counts(pred, gt, strict=True))
    bd, bi, be = brute_dice_iou_e(pred, gt)
    assert_allclose(dice, bd, rtol=1e-12, atol=1e-15)
    assert_allclose(iou, bi, rtol=1e-12, atol=1e-15)
    assert_allclose(e, be, rtol=1e-10)


def test_threshold_grid_is_matlab_colon() -> None:
    assert THRESHOLDS.shape == (256,) and THRESHOLDS[0] == 1.0 and THRESHOLDS[-1] == 0.0
    assert np.all(np.diff(THRESHOLDS) < 0)
    assert_allclose(THRESHOLDS, np.linspace(1, 0, 256), atol=1e-15)
    # MATLAB's colon fills the first half as 1 + k*(-1/255): e.g. the value for 138/255 comes out one
    # unit in the last place above 138/255, so a map value of exactly 138/255 does not reach it.
    k = 255 - 138
    assert THRESHOLDS[k] == 1.0 + k * (-1.0 / 255.0)
    assert THRESHOLDS[k] > 138 / 255


def test_pysodmetrics_threshold_grid_differs_from_toolbox() -> None:
    """PySODMetrics bins ``uint8(map * 255)``, so a pixel of exactly 138/255 passes t = 138/255; in MATLAB
    it does not (see :func:`test_threshold_grid_is_matlab_colon`). The Dice curves differ at that threshold."""
    gt = np.zeros((4, 4), bool)
    gt[:2, :2] = True
    raw = np.zeros((4, 4), np.uint8)
    raw[:2, :2] = 138
    raw[3, 3] = 255
    pred = raw / 255.0
    ours, _ = dice_iou(threshold_counts(pred, gt))
    fm = FmeasureV2(metric_handlers={"dice": DICEHandler(with_dynamic=True, with_adaptive=False)})
    fm.step(raw, gt.astype(np.uint8) * 255)
    theirs = fm.get_results()["dice"]["dynamic"]  # descending thresholds, as ours
    k = 255 - 138
    assert theirs[k] == pytest.approx(2 * 4 / (4 + 5))  # counted
    assert ours[k] == 0.0  # toolbox: 138/255 < t, only the 255 pixel is on -> no true positive
    assert ours[k + 1] == pytest.approx(2 * 4 / (4 + 5))
    # Everywhere else the two agree.
    mask = np.ones(256, bool)
    mask[k] = False
    assert_allclose(ours[mask], theirs[mask], rtol=1e-12)


def test_emeasure_ge_equals_pysodmetrics_and_toolbox_gt_differs() -> None:
    raw, gt = blob_pair(11)
    # Keep map values off the few levels where the MATLAB grid and k/255 differ in the last bit.
    raw[(raw > 130) & (raw < 255)] = 200
    pred = raw / 255.0
    em = Emeasure()
    em.gt_fg_numel, em.gt_size = int(gt.sum()), gt.size
    theirs = em.cal_em_with_cumsumhistogram(pred, gt)  # descending thresholds, as ours
    ours_ge = emeasure_from_counts(threshold_counts(pred, gt))
    assert_allclose(ours_ge, theirs, rtol=1e-12)
    ours_gt = emeasure_from_counts(threshold_counts(pred, gt, strict=True))
    assert not np.allclose(ours_gt, theirs)
    # With ">", the first threshold (t = 1) binarises to an empty map (alignment 0 -> 0.25 everywhere),
    # where PySODMetrics' first threshold (>= 1) keeps the pixels at 255.
    assert_allclose(ours_gt[0], 0.25 * gt.size / (gt.size - 1), rtol=1e-12)
    assert theirs[0] > ours_gt[0]


@pytest.mark.parametrize("seed", range(8))
def test_weighted_fmeasure_equals_pysodmetrics(seed: int) -> None:
    raw, gt = blob_pair(seed, 37 + seed, 61)
    pred = mapminmax(raw / 255.0)
    assert_allclose(weighted_fmeasure(pred, gt), WeightedFmeasure().cal_wfm(pred, gt), rtol=1e-9)


def test_weighted_fmeasure_empty_mask_is_zero() -> None:
    assert weighted_fmeasure(np.full((5, 5), 0.3), np.zeros((5, 5), bool)) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 2, 4, 5, 6])  # seed 3's centroid ties (x = 16.5): see the next test
def test_smeasure_equals_pysodmetrics_without_centroid_ties(seed: int) -> None:
    raw, gt = blob_pair(seed)
    pred = mapminmax(raw / 255.0)
    centroid = np.argwhere(gt).mean(axis=0)
    assert not np.any(np.abs(centroid % 1 - 0.5) < 1e-12), "pick a seed whose centroid does not tie"
    assert_allclose(smeasure(pred, gt), Smeasure().cal_sm(pred, gt), rtol=1e-12)


def test_smeasure_centroid_tie_rounds_like_matlab() -> None:
    """Mask cols 1..4: 0-based mean 2.5. MATLAB: round(3.5) = 4 -> split after col 4 (1-based).
    PySODMetrics: np.round(2.5) = 2, + 1 = 3 -> split after col 3."""
    gt = np.zeros((6, 8), bool)
    gt[1:5, 1:5] = True  # rows 1..4 too: both coordinates tie
    rng = np.random.default_rng(0)
    pred = np.clip(gt * 0.8 + rng.uniform(0, 0.3, gt.shape), 0, 1)
    ours, theirs = smeasure(pred, gt), Smeasure().cal_sm(pred, gt)
    assert ours != pytest.approx(theirs, rel=1e-6)

    class MatlabSplit(Smeasure):  # type: ignore[misc]
        def region(self, p: np.ndarray, g: np.ndarray) -> float:
            h, w = g.shape
            cy = cx = 4  # MATLAB round(3.5)
            ws = (cx * cy / (h * w), cy * (w - cx) / (h * w), (h - cy) * cx / (h * w))
            parts = [
                self.ssim(p[:cy, :cx], g[:cy, :cx]),
                self.ssim(p[:cy, cx:], g[:cy, cx:]),
                self.ssim(p[cy:, :cx], g[cy:, :cx]),
                self.ssim(p[cy:, cx:], g[cy:, cx:]),
            ]
            return float(sum(wi * q for wi, q in zip((*ws, 1 - sum(ws)), parts, strict=True)))

    assert_allclose(ours, MatlabSplit().cal_sm(pred, gt), rtol=1e-12)


def test_mapminmax() -> None:
    x = np.array([[0.2, 0.6], [0.4, 1.0]])
    assert_allclose(mapminmax(x), [[0.0, 0.5], [0.25, 1.0]], rtol=1e-12)
    c = np.full((2, 2), 0.3)
    assert mapminmax(c) is c  # constant maps are left as they are
