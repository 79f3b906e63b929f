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


def test_cam_component_boxes_every_component_at_every_threshold_and_scale() -> None:
    from endoked.prompt_seg.refine import cam_component_boxes

    cam = np.zeros((100, 100), np.float32)
    cam[10:30, 10:30] = 1.0  # strong blob
    cam[60:80, 50:90] = 0.4  # weak blob: only below threshold 0.4
    cam[95:97, 0:2] = 1.0  # a speck of 4 px < 0.3 % of the image
    boxes = cam_component_boxes(cam, thresholds=[0.3, 0.5], scales=[1.0], min_area=0.003)
    np.testing.assert_allclose(sorted(boxes.tolist()), [[10, 10, 30, 30], [50, 60, 90, 80]])
    scaled = cam_component_boxes(cam, thresholds=[0.5], scales=[1.0, 2.0])
    np.testing.assert_allclose(scaled, [[10, 10, 30, 30], [0, 0, 40, 40]])
    assert cam_component_boxes(np.zeros((10, 10)), [0.5]).shape == (0, 4)


def test_mask_consensus_hand_values() -> None:
    from endoked.prompt_seg.refine import mask_consensus

    a = np.zeros((64, 64), bool)
    a[0:32, 0:32] = True
    half = np.zeros((64, 64), bool)
    half[0:32, 0:16] = True  # IoU with a: 0.5
    b = np.zeros((64, 64), bool)
    b[40:60, 40:60] = True  # disjoint from both
    np.testing.assert_allclose(
        mask_consensus([a, a, half, b]), [(1 + 0.5 + 0) / 3, (1 + 0.5 + 0) / 3, (0.5 + 0.5 + 0) / 3, 0.0], atol=1e-6
    )
    assert mask_consensus([a]).tolist() == [0.0]


class _ObjectSegmenter:
    """A fake box-prompted segmenter: a prompt whose centre lies on the object returns the object's mask
    (score 0.8); any other prompt returns its own box as the mask with a higher score (0.95)."""

    def __init__(self, obj: np.ndarray) -> None:
        self.obj = obj

    def predict(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        masks, scores = [], []
        for x0, y0, x1, y1 in boxes:
            cy, cx = int((y0 + y1) / 2), int((x0 + x1) / 2)
            if self.obj[cy, cx]:
                masks.append(self.obj.copy())
                scores.append(0.8)
            else:
                m = np.zeros_like(self.obj)
                m[int(y0) : int(y1), int(x0) : int(x1)] = True
                masks.append(m)
                scores.append(0.95)
        return np.stack(masks), np.array(scores, np.float32)


def test_select_mask_prefers_the_region_the_candidates_agree_on() -> None:
    from endoked.prompt_seg.refine import Selection, select_mask

    obj = disk_cam(cy=60, cx=60, r=15) > 0
    cam = 0.6 * disk_cam(cy=60, cx=60, r=18) + 0.35 * disk_cam(cy=60, cx=60, r=10)
    cam[5:25, 5:25] = 1.0  # the CAM's peak is a distractor (a light reflex, say)
    seg = _ObjectSegmenter(obj)
    sel = Selection(thresholds=(0.3, 0.5, 0.8), scales=(0.8, 1.0, 1.25), w_score=1.0, w_consensus=1.0)
    best = select_mask(seg, cam, sel=sel)  # type: ignore[arg-type]
    assert best is not None
    np.testing.assert_array_equal(best.mask, obj)  # 6 of 9 prompts agree on the object; the distractor's 3 differ
    assert best.score == pytest.approx(0.8) and best.consensus == pytest.approx(5 / 8)
    assert best.rank == pytest.approx(best.score + best.consensus)
    by_score = select_mask(seg, cam, sel=Selection(thresholds=(0.3, 0.5, 0.8), w_consensus=0.0))  # type: ignore[arg-type]
    assert by_score is not None and not by_score.mask[60, 60]  # the score alone picks the distractor
    assert select_mask(seg, None, None, sel) is None  # type: ignore[arg-type]
    assert passes_filter(best, min_rank=best.rank + 0.01) == "low_rank"
    assert passes_filter(best, min_rank=best.rank - 0.01) is None


def test_merge_boxes_groups_near_identical_prompts_in_order() -> None:
    from endoked.prompt_seg.refine import merge_boxes

    boxes = np.array(
        [
            [10, 10, 60, 60],
            [30, 30, 90, 90],
            [10, 10, 60, 60.2],
            [10.1, 10, 60, 60],
            [30, 30, 90, 90],
            [10, 10, 50, 50],
        ],
        np.float32,
    )
    reps, group, counts = merge_boxes(boxes, 0.98)
    np.testing.assert_array_equal(reps, boxes[[0, 1, 5]])
    assert group.tolist() == [0, 1, 0, 0, 1, 2] and counts.tolist() == [3, 2, 1]
    reps, group, counts = merge_boxes(boxes, 1.0)  # IoU never exceeds 1: nothing merged
    assert len(reps) == 6 and counts.tolist() == [1] * 6
    assert merge_boxes(np.zeros((0, 4)), 0.98)[0].shape == (0, 4)


def test_weighted_consensus_equals_the_unmerged_list() -> None:
    from endoked.prompt_seg.refine import mask_consensus

    rng = np.random.default_rng(3)
    masks = [rng.random((40, 52)) > t for t in (0.3, 0.5, 0.7)] + [np.zeros((40, 52), bool)]
    counts = np.array([3, 1, 2, 2])
    expanded = [m for m, c in zip(masks, counts, strict=True) for _ in range(c)]
    full = mask_consensus(expanded, 16)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    np.testing.assert_allclose(mask_consensus(masks, 16, counts), full[first], atol=1e-6)
    assert mask_consensus([masks[0]], 16, np.array([2])).tolist() == [1.0]  # two copies agree fully
    assert mask_consensus([masks[3]], 16, np.array([2])).tolist() == [0.0]  # empty masks do not


def test_consensus_grid_is_cv2_nearest() -> None:
    import cv2

    from endoked.prompt_seg.refine import _nearest_grid

    rng = np.random.default_rng(0)
    # (442, 412), (280, 210), (246, 185): frame sizes of the public archive where i * H // size is off by one
    sizes = [(288, 384), (530, 622), (64, 64), (37, 90), (412, 442), (210, 280), (185, 246)]
    sizes += [(int(h), int(w)) for h, w in rng.integers(20, 1200, (200, 2))]
    for h, w in sizes:
        m = rng.random((1, h, w)) > 0.5
        ref = np.stack([cv2.resize(x.astype(np.uint8), (64, 64), interpolation=cv2.INTER_NEAREST) for x in m])
        np.testing.assert_array_equal(_nearest_grid(m, 64), ref.astype(bool))


class _DupSegmenter:
    """A deterministic fake: the mask of a box is its inscribed ellipse at a quarter of the image resolution
    (``predict_lowres``) upsampled (``predict``), the score a fixed function of the rounded box; boxes that
    round alike give identical masks and scores, so merged and unmerged decoding must select alike."""

    def __init__(self, size_hw: tuple[int, int]) -> None:
        self.image_size = size_hw
        self.decoded = 0

    def predict_lowres(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from endoked.prompt_seg.ellipse import ellipse_masks

        self.decoded += len(boxes)
        h, w = self.image_size
        r = np.round(np.asarray(boxes, np.float64))
        small = ellipse_masks(r / 4, (h // 4, w // 4))
        scores = (0.7 + 0.25 * np.cos(r.sum(1) * 0.37) ** 2).astype(np.float32)
        return np.where(small, 1.0, -1.0).astype(np.float32), scores

    def upsample_logits(self, logits: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(logits > 0, 4, axis=1), 4, axis=2)

    def predict(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, scores = self.predict_lowres(boxes)
        return self.upsample_logits(logits), scores


def test_merged_prompts_select_like_unmerged_golden() -> None:
    from endoked.prompt_seg.refine import Selection, select_mask

    obj = disk_cam(size=120, cy=64, cx=56, r=22)
    cam = 0.7 * obj + 0.3 * disk_cam(size=120, cy=64, cx=56, r=12)
    cam[8:20, 90:110] = 0.9  # a distractor component
    extra = np.array([[34, 42, 78, 86], [34.2, 42, 78, 86.1], [90, 8, 110, 20]], np.float32)
    merged_seg, plain_seg = _DupSegmenter((120, 120)), _DupSegmenter((120, 120))
    base = dict(thresholds=(0.2, 0.3, 0.5, 0.65, 0.8), scales=(0.8, 1.0, 1.25), w_score=1.0, w_consensus=1.0)
    merged = select_mask(merged_seg, cam, extra, Selection(**base, merge_iou=0.98))  # type: ignore[arg-type]
    plain = select_mask(plain_seg, cam, extra, Selection(**base, merge_iou=1.0))  # type: ignore[arg-type]
    assert merged is not None and plain is not None
    assert merged_seg.decoded < plain_seg.decoded  # fewer prompts decoded ...
    np.testing.assert_array_equal(merged.mask, plain.mask)  # ... the same winner, consensus and rank
    np.testing.assert_array_equal(merged.box, plain.box)
    assert merged.consensus == pytest.approx(plain.consensus, abs=1e-6)
    assert merged.rank == pytest.approx(plain.rank, abs=1e-6)
    assert merged.mask[64, 56] and not merged.mask[14, 100]


def test_lowres_consensus_agrees_with_full_resolution() -> None:
    from endoked.prompt_seg.refine import Selection, select_mask

    obj = disk_cam(size=160, cy=80, cx=70, r=30)
    cam = 0.6 * obj + 0.4 * disk_cam(size=160, cy=80, cx=70, r=14)
    cam[10:30, 110:150] = 0.95
    sel = dict(thresholds=(0.2, 0.3, 0.5, 0.65, 0.8), scales=(0.8, 1.0, 1.25))
    low = select_mask(_DupSegmenter((160, 160)), cam, None, Selection(**sel, lowres_consensus=True))  # type: ignore[arg-type]
    full = select_mask(_DupSegmenter((160, 160)), cam, None, Selection(**sel, lowres_consensus=False))  # type: ignore[arg-type]
    assert low is not None and full is not None
    np.testing.assert_array_equal(low.box, full.box)
    np.testing.assert_array_equal(low.mask, full.mask)
    assert low.consensus == pytest.approx(full.consensus, abs=0.02)
    assert low.area_fraction == pytest.approx(full.area_fraction) and low.box_fill == pytest.approx(full.box_fill)
    # the per-candidate consensus values themselves, low-res vs full-res masks
    from endoked.prompt_seg.refine import cam_component_boxes, clean_mask, mask_consensus

    seg = _DupSegmenter((160, 160))
    boxes = cam_component_boxes(cam, sel["thresholds"], sel["scales"])
    logits, _ = seg.predict_lowres(boxes)
    c_low = mask_consensus([clean_mask(lg > 0) for lg in logits])
    c_full = mask_consensus([clean_mask(m) for m in seg.upsample_logits(logits)])
    np.testing.assert_allclose(c_low, c_full, atol=0.03)


def test_cam_peaks_strongest_first_and_apart() -> None:
    from endoked.prompt_seg.refine import cam_peak_boxes, cam_peaks

    cam = np.zeros((100, 200), np.float32)
    cam[30, 50], cam[31, 52], cam[70, 150], cam[10, 190] = 1.0, 0.9, 0.8, 0.3
    # (31, 52) is within 5 % of the shorter side (5 px) of the stronger (30, 50); 0.3 is below half the maximum
    assert cam_peaks(cam, 3) == [(30, 50), (70, 150)]
    assert cam_peaks(cam, 3, min_peak=0.2) == [(30, 50), (70, 150), (10, 190)]
    assert cam_peaks(np.zeros((10, 10), np.float32)) == []
    boxes = cam_peak_boxes(cam, [0.1, 0.3], peaks=2)
    # sides 10 and 30 px (shares of the shorter side, 100), centred on each peak, clipped to the image
    np.testing.assert_allclose(
        boxes, [[45, 25, 55, 35], [35, 15, 65, 45], [145, 65, 155, 75], [135, 55, 165, 85]], atol=1e-6
    )
    np.testing.assert_allclose(cam_peak_boxes(cam, [0.8], peaks=1), [[10, 0, 90, 70]], atol=1e-6)  # y clipped at 0
    assert cam_peak_boxes(np.zeros((10, 10), np.float32), [0.2]).shape == (0, 4)


def test_peak_prompts_find_a_small_object_inside_a_broad_cam() -> None:
    """A whole-frame CAM that covers a broad area with its peak on a small object: the CAM components' boxes are
    far larger than the object (the fake segmenter returns such a box as its own mask), the boxes around the
    peak are centred on it and return the object."""
    from endoked.prompt_seg.refine import Selection, select_mask

    obj = disk_cam(size=200, cy=90, cx=110, r=9) > 0
    cam = 0.5 * disk_cam(size=200, cy=100, cx=100, r=70) + 0.3 * disk_cam(size=200, cy=100, cx=100, r=40)
    cam[86:95, 106:115] += 0.2  # the peak, on the object
    seg = _ObjectSegmenter(obj)
    base = dict(thresholds=(0.4, 0.7), scales=(1.0,), w_score=1.0, w_consensus=1.0, lowres_consensus=False)
    default = select_mask(seg, cam, sel=Selection(**base))  # type: ignore[arg-type]
    assert default is not None and default.mask.sum() > 4 * obj.sum()
    only = select_mask(seg, cam, sel=Selection(**base, peak_sizes=(0.1, 0.15, 0.22), peak_only=True))  # type: ignore[arg-type]
    assert only is not None
    np.testing.assert_array_equal(only.mask, obj)
    assert only.consensus == pytest.approx(1.0)  # all three peak prompts return the object
    mixed = select_mask(seg, cam, sel=Selection(**base, peak_sizes=(0.1, 0.15, 0.22)))  # type: ignore[arg-type]
    assert mixed is not None
    np.testing.assert_array_equal(mixed.mask, obj)
    # peak_only without peak sizes keeps the usual candidates
    same = select_mask(seg, cam, sel=Selection(**base, peak_only=True))  # type: ignore[arg-type]
    assert same is not None
    np.testing.assert_array_equal(same.mask, default.mask)
