"""Candidate prompts, selection by CAM agreement, refinement and the pseudo-label filter."""

from __future__ import annotations

import numpy as np
import pytest

from endoked.prompt_seg import create_segmenter
from endoked.prompt_seg.refine import (
    MaskResult,
    candidate_boxes,
    clean_mask,
    passes_filter,
    scale_box,
    segment_box,
    soft_iou,
)


def disk_cam(size: int = 100, cy: int = 50, cx: int = 50, r: int = 20) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (((yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2) <= r * r).astype(np.float32)


def test_soft_iou_and_clean_mask() -> None:
    cam = np.array([[1.0, 0.5], [0.0, 0.0]], dtype=np.float32)
    assert soft_iou(cam, np.array([[1, 1], [0, 0]], bool)) == pytest.approx(1.5 / 2.0)
    assert soft_iou(np.zeros((2, 2)), np.zeros((2, 2), bool)) == 0.0
    m = np.zeros((10, 10), bool)
    m[1:6, 1:6] = True
    m[3, 3] = False  # a hole
    m[8, 8] = True  # a speck
    out = clean_mask(m)
    assert out[3, 3] and not out[8, 8] and out.sum() == 25
    np.testing.assert_array_equal(clean_mask(m, keep_largest=False, fill_holes=False), m)


def test_candidate_boxes_from_thresholds_and_scales() -> None:
    cam = disk_cam()
    cam_box = np.array([10, 10, 90, 90], np.float32)
    cands = candidate_boxes(cam_box, cam, thresholds=[0.5], scales=[0.75])
    np.testing.assert_allclose(cands, [[10, 10, 90, 90], [30, 30, 70, 70], [20, 20, 80, 80]])
    # The CAM box at half size is the disk's box again: duplicates are dropped.
    assert len(candidate_boxes(cam_box, cam, thresholds=[0.5], scales=[0.5])) == 2
    assert len(candidate_boxes(cam_box, None, [0.5], [])) == 1


def test_scale_box_clips() -> None:
    np.testing.assert_allclose(scale_box(np.array([0, 0, 20, 10]), 2.0, (100, 100)), [0, 0, 30, 15])


def test_selection_by_cam_agreement_finds_the_tight_box() -> None:
    seg = create_segmenter("ellipse")
    seg.set_image(np.zeros((100, 100, 3), np.uint8))
    cam = disk_cam()
    loose = np.array([10, 10, 90, 90], np.float32)
    best = segment_box(seg, loose, cam, thresholds=[0.5], weight_cam=1.0)
    np.testing.assert_allclose(best.box, [30, 30, 70, 70])
    assert best.cam_agreement > 0.95
    # Without the CAM in the ranking, equal segmenter scores keep the CAM box.
    plain = segment_box(seg, loose, cam, thresholds=[0.5], weight_cam=0.0)
    np.testing.assert_allclose(plain.box, loose)
    assert plain.cam_agreement < 0.3
    assert plain.area_fraction == pytest.approx(np.pi * 40 * 40 / 10000, rel=0.02)
    assert plain.box_fill == pytest.approx(np.pi / 4, rel=0.02)
    # Refinement converges at once for an ellipse (its mask's box is the prompt box).
    refined = segment_box(seg, loose, None, refine_iters=3)
    np.testing.assert_allclose(refined.box, loose)
    assert np.isnan(refined.cam_agreement)


def test_pseudo_label_filter_reasons() -> None:
    mask = np.zeros((10, 10), bool)
    mask[2:6, 2:6] = True
    r = MaskResult(mask, 0.9, np.array([2, 2, 6, 6], np.float32), 0.5, 0.16, 1.0)
    assert passes_filter(r) is None
    assert passes_filter(r, min_score=0.95) == "low_score"
    assert passes_filter(r, min_cam_agreement=0.6) == "low_cam_agreement"
    assert passes_filter(r, min_area_fraction=0.2) == "mask_too_small"
    assert passes_filter(r, max_area_fraction=0.1) == "mask_too_large"
    assert passes_filter(r, min_box_fill=1.01) == "low_box_fill"
    empty = MaskResult(np.zeros((10, 10), bool), 0.9, r.box, 0.5, 0.0, 0.0)
    assert passes_filter(empty) == "empty_mask"
    nan_agreement = MaskResult(mask, 0.9, r.box, float("nan"), 0.16, 1.0)
    assert passes_filter(nan_agreement, min_cam_agreement=0.3) == "low_cam_agreement"
