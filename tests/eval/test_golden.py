"""Hand-computed golden values of the toolbox metrics on tiny maps (4x4 or 8x8)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from numpy.testing import assert_allclose

from endoked.errors import DataFormatError
from endoked.eval import EvalConfig, PolypMetrics

EPS = float(np.spacing(1))


def square_gt() -> np.ndarray:
    """8x8 mask, foreground rows 2..5 and cols 2..5 (16 of 64 pixels)."""
    gt = np.zeros((8, 8), dtype=bool)
    gt[2:6, 2:6] = True
    return gt


def scores(pred: np.ndarray, gt: np.ndarray, **cfg: object) -> dict[str, float | int]:
    metric = PolypMetrics(EvalConfig(**cfg))
    metric.update(pred, gt)
    return metric.compute()


def test_empty_gt_empty_prediction() -> None:
    gt = np.zeros((4, 4), dtype=bool)
    s = scores(np.zeros((4, 4), np.uint8), gt)
    # Toolbox: no true positive -> Dice = IoU = 0 at every threshold, also for this "correct" empty map.
    assert s["mean_dice"] == 0.0 and s["max_dice"] == 0.0 and s["mean_iou"] == 0.0 and s["dice_05"] == 0.0
    assert s["s_alpha"] == 1.0  # all-background mask: 1 - mean(map)
    assert s["mae"] == 0.0 and s["wf_beta"] == 0.0
    # E-measure: map > t is empty at every t -> sum(1 - FM) / (16 - 1 + eps) = 16/15.
    assert_allclose([s["mean_e"], s["max_e"]], [16 / 15, 16 / 15], rtol=1e-12)
    # Adaptive threshold min(2 * mean, 1) = 0 and map >= 0 covers everything -> 0.
    assert s["adaptive_e"] == 0.0
    assert s["n_empty_gt"] == 1
    # Policy switch: a threshold where mask and binarised map are both empty counts 1. map >= 0 covers
    # every pixel at the last threshold (t = 0), so 255 of 256 thresholds score 1.
    one = scores(np.zeros((4, 4), np.uint8), gt, empty_score="one")
    assert_allclose(one["mean_dice"], 255 / 256, rtol=1e-12)
    assert one["dice_05"] == 1.0 and one["iou_05"] == 1.0


def test_empty_gt_with_false_positive() -> None:
    pred = np.zeros((4, 4), np.uint8)
    pred[1, 2] = 255
    s = scores(pred, np.zeros((4, 4), np.uint8))
    assert s["mean_dice"] == 0.0 and s["dice_05"] == 0.0 and s["iou_05"] == 0.0
    assert_allclose(s["s_alpha"], 1 - 1 / 16, rtol=1e-12)
    assert_allclose(s["mae"], 1 / 16, rtol=1e-12)
    # t = 1: nothing above it -> 16/15; the other 255 thresholds: one pixel -> 15/15.
    assert_allclose(s["max_e"], 16 / 15, rtol=1e-12)
    assert_allclose(s["mean_e"], (16 / 15 + 255 * 1.0) / 256, rtol=1e-12)
    assert_allclose(s["adaptive_e"], 1.0, rtol=1e-12)  # threshold 2/16, one pixel on


def test_perfect_prediction() -> None:
    gt = square_gt()
    s = scores(gt.astype(np.uint8) * 255, gt)
    # t in (0, 1]: exact map -> 1; t = 0: all 64 pixels on -> Dice 2*16/80 = 0.4, IoU 16/64.
    assert_allclose(s["mean_dice"], (255 + 0.4) / 256, rtol=1e-12)
    assert_allclose(s["mean_iou"], (255 + 0.25) / 256, rtol=1e-12)
    assert s["max_dice"] == 1.0 and s["dice_05"] == 1.0 and s["iou_05"] == 1.0
    assert s["mae"] == 0.0
    assert_allclose([s["s_alpha"], s["wf_beta"]], [1.0, 1.0], rtol=1e-9)
    # E: t = 1 -> empty map, alignment 0 everywhere -> 64 * 0.25 / 63; else perfect -> 64 / 63.
    assert_allclose(s["max_e"], 64 / 63, rtol=1e-9)
    assert_allclose(s["mean_e"], (16 / 63 + 255 * 64 / 63) / 256, rtol=1e-9)
    assert_allclose(s["adaptive_e"], 64 / 63, rtol=1e-9)


def test_one_pixel_shift() -> None:
    gt = square_gt()
    pred = np.roll(gt, 1, axis=1).astype(np.uint8) * 255  # cols 3..6: 12 of 16 pixels overlap
    s = scores(pred, gt)
    assert_allclose(s["mean_dice"], (255 * 24 / 32 + 0.4) / 256, rtol=1e-12)
    assert_allclose(s["mean_iou"], (255 * 12 / 20 + 0.25) / 256, rtol=1e-12)
    assert_allclose([s["dice_05"], s["iou_05"], s["max_dice"]], [0.75, 0.6, 0.75], rtol=1e-12)
    assert_allclose(s["mae"], 8 / 64, rtol=1e-12)
    # E at t < 1: tp 12 and tn 44 align perfectly (1); fp 4 and fn 4 have alignment
    # 2*(0.75*-0.25)/(0.75^2+0.25^2) = -0.6 -> (0.4^2)/4 = 0.04 each.
    e_shift = (12 + 44 + 8 * 0.04) / 63
    assert_allclose(s["max_e"], e_shift, rtol=1e-9)
    assert_allclose(s["mean_e"], (16 / 63 + 255 * e_shift) / 256, rtol=1e-9)


def constant_map_expectations() -> dict[str, float]:
    c = 128 / 255  # a constant map is not rescaled (mapminmax leaves it as it is)
    o_fg = 2 * c / (c * c + 1 + EPS)
    o_bg = 2 * (1 - c) / ((1 - c) ** 2 + 1 + EPS)
    return {
        "mae": (16 * (1 - c) + 48 * c) / 64,
        # thresholds 0, 1/255, ..., 128/255 (129 of them) cover every pixel: Dice 0.4, IoU 0.25.
        "mean_dice": 129 * 0.4 / 256,
        "mean_iou": 129 * 0.25 / 256,
        "max_dice": 0.4,
        "dice_05": 0.4,
        # S_region: every quadrant mixes mask classes while the map has no variance -> 0.
        "s_alpha": 0.5 * (0.25 * o_fg + 0.75 * o_bg),
        # E: a binarised constant map is all-on or all-off, alignment 0 -> 64 * 0.25 / 63.
        "mean_e": 16 / 63,
        "max_e": 16 / 63,
    }


def test_constant_map() -> None:
    s = scores(np.full((8, 8), 128, np.uint8), square_gt())
    for key, value in constant_map_expectations().items():
        assert_allclose(s[key], value, rtol=1e-9, err_msg=key)


def test_size_mismatch_is_resized_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    metric = PolypMetrics()
    with caplog.at_level(logging.WARNING, logger="endoked.eval"):
        record = metric.update(np.full((4, 6), 128, np.uint8), square_gt(), name="case-17")
    assert record["resized"] is True
    assert any("case-17" in r.getMessage() and "resized" in r.getMessage() for r in caplog.records)
    s = metric.compute()
    assert s["n_resized"] == 1
    # Bicubic resizing keeps a constant map constant: the same golden values as the same-size case.
    for key, value in constant_map_expectations().items():
        assert_allclose(s[key], value, rtol=1e-9, err_msg=key)


def test_size_mismatch_of_a_step_keeps_the_binary_scores() -> None:
    gt = np.zeros((8, 8), bool)
    gt[:, :4] = True
    big = np.zeros((16, 16), np.uint8)
    big[:, :8] = 255
    s = scores(big, gt)
    assert s["dice_05"] == 1.0 and s["iou_05"] == 1.0 and s["max_dice"] == 1.0
    assert 0.0 < s["mae"] < 0.1  # bicubic blurs the edge a little


def test_size_mismatch_can_be_an_error() -> None:
    with pytest.raises(DataFormatError, match="mask"):
        scores(np.zeros((4, 4), np.uint8), square_gt(), on_size_mismatch="error")
