"""Box extraction and EndoKED's filters on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest

from endoked.boxes import (
    BoxFilter,
    box_iou,
    box_of_mask,
    boxes_from_cam,
    mask_components_boxes,
    normalise_cam,
)


def blob_map(size: tuple[int, int], rects: list[tuple[int, int, int, int, float]]) -> np.ndarray:
    """A map with constant-valued rectangles ``(x0, y0, x1, y1, value)`` (exclusive ends) on zeros."""
    cam = np.zeros(size, dtype=np.float32)
    for x0, y0, x1, y1, v in rects:
        cam[y0:y1, x0:x1] = v
    return cam


def test_single_blob_gives_its_exact_box() -> None:
    cam = blob_map((100, 100), [(20, 30, 40, 45, 2.0)])
    res = boxes_from_cam(cam)
    assert res.reason is None
    assert len(res.boxes) == 1
    b = res.boxes[0]
    assert (b.x0, b.y0, b.x1, b.y1) == (20.0, 30.0, 40.0, 45.0)
    assert b.area_fraction == pytest.approx(20 * 15 / 10000)
    assert b.score == pytest.approx(1.0)


def test_threshold_is_relative_to_the_maximum() -> None:
    # 0.6 of the max is below 0.65: only the strong blob is foreground.
    cam = blob_map((100, 100), [(10, 10, 30, 30, 10.0), (60, 60, 80, 80, 6.0)])
    res = boxes_from_cam(cam)
    assert res.reason is None and len(res.boxes) == 1
    assert res.boxes[0].x0 == 10.0
    # 0.7 of the max is above 0.65: two components, the larger one is kept.
    cam = blob_map((100, 100), [(10, 10, 30, 30, 10.0), (50, 50, 80, 80, 7.0)])
    res = boxes_from_cam(cam)
    assert res.n_components == 2
    assert (res.boxes[0].x0, res.boxes[0].y0) == (50.0, 50.0)


def test_box_too_small_and_too_large() -> None:
    small = blob_map((100, 100), [(40, 40, 49, 49, 1.0)])  # 81 px < 1 %
    assert boxes_from_cam(small).reason == "box_too_small"
    edge = blob_map((100, 100), [(40, 40, 50, 50, 1.0)])  # exactly 1 % is kept
    assert boxes_from_cam(edge).reason is None
    large = blob_map((100, 100), [(5, 5, 65, 65, 1.0)])  # 36 % > 35 %
    assert boxes_from_cam(large).reason == "box_too_large"
    assert boxes_from_cam(large, BoxFilter(max_area=0.4)).reason is None


def test_border_contact() -> None:
    cam = blob_map((100, 100), [(0, 40, 20, 60, 1.0)])
    assert boxes_from_cam(cam).reason == "touches_border"
    assert boxes_from_cam(cam, BoxFilter(drop_border=False)).reason is None
    bottom = blob_map((100, 100), [(40, 85, 60, 100, 1.0)])
    assert boxes_from_cam(bottom).reason == "touches_border"
    near = blob_map((100, 100), [(2, 40, 20, 60, 1.0)])
    assert boxes_from_cam(near).reason is None
    assert boxes_from_cam(near, BoxFilter(border_margin=2)).reason == "touches_border"


def test_three_components_drop_the_image() -> None:
    rects = [(10, 10, 25, 25, 1.0), (40, 40, 55, 55, 1.0), (70, 70, 85, 85, 1.0)]
    cam = blob_map((100, 100), rects)
    res = boxes_from_cam(cam)
    assert res.reason == "too_many_components" and res.n_components == 3
    assert boxes_from_cam(blob_map((100, 100), rects[:2])).reason is None
    assert boxes_from_cam(cam, BoxFilter(max_components=None)).reason is None
    # Tiny noise components can be ignored.
    noisy = blob_map((100, 100), [*rects[:2], (90, 5, 92, 7, 1.0)])
    assert boxes_from_cam(noisy).reason == "too_many_components"
    assert boxes_from_cam(noisy, BoxFilter(min_component_area=0.001)).reason is None


def test_no_foreground_for_empty_or_broken_maps() -> None:
    assert boxes_from_cam(np.zeros((10, 10))).reason == "no_foreground"
    assert boxes_from_cam(-np.ones((10, 10))).reason == "no_foreground"
    broken = np.ones((10, 10))
    broken[0, 0] = np.nan
    assert boxes_from_cam(broken).reason == "no_foreground"


def test_multi_box_keeps_every_passing_component() -> None:
    rects = [(10, 10, 30, 30, 1.0), (60, 60, 75, 75, 1.0)]
    res = boxes_from_cam(blob_map((100, 100), rects), BoxFilter(multi_box=True))
    assert res.reason is None
    assert [(b.x0, b.y0, b.x1, b.y1) for b in res.boxes] == [(10, 10, 30, 30), (60, 60, 75, 75)]
    # One component fails (border): the other is still kept.
    rects = [(0, 10, 30, 30, 1.0), (60, 60, 75, 75, 1.0)]
    res = boxes_from_cam(blob_map((100, 100), rects), BoxFilter(multi_box=True))
    assert [(b.x0, b.y0) for b in res.boxes] == [(60, 60)]
    # All fail: the reason of the first failing (largest) component is reported.
    rects = [(0, 10, 30, 30, 1.0), (60, 60, 64, 64, 1.0)]
    res = boxes_from_cam(blob_map((100, 100), rects), BoxFilter(multi_box=True))
    assert res.boxes == [] and res.reason == "touches_border"


def test_scaled_box_maps_to_image_frame() -> None:
    res = boxes_from_cam(blob_map((10, 10), [(2, 3, 5, 6, 1.0)]), BoxFilter(max_area=0.5))
    b = res.boxes[0].scaled(60.0, 50.0)
    np.testing.assert_allclose(b.as_array(), [120, 150, 300, 300])


def test_normalise_cam_rejects_non_2d() -> None:
    from endoked.errors import DataFormatError

    with pytest.raises(DataFormatError):
        normalise_cam(np.zeros((2, 3, 4)))
    np.testing.assert_allclose(normalise_cam(np.array([[-1.0, 2.0], [1.0, 4.0]])), [[0, 0.5], [0.25, 1]])


def test_mask_boxes_and_iou() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:5, 3:9] = True
    mask[10:20, 10:12] = True
    np.testing.assert_array_equal(box_of_mask(mask[:8]), [3, 2, 9, 5])
    assert box_of_mask(np.zeros((4, 4))) is None
    boxes = mask_components_boxes(mask)
    np.testing.assert_array_equal(boxes, [[3, 2, 9, 5], [10, 10, 12, 20]])
    assert mask_components_boxes(mask, min_area=19).shape == (1, 4)
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0]])


def test_box_filter_config_is_the_filter_shape() -> None:
    from dataclasses import asdict

    from endoked.boxes import BoxFilter, BoxFilterConfig

    assert asdict(BoxFilterConfig().to_filter()) == asdict(BoxFilter())  # same fields, EndoKED's defaults
    f = BoxFilterConfig(min_area=0.02, drop_border=False).to_filter(multi_box=True)
    assert (f.min_area, f.drop_border, f.multi_box, f.max_area) == (0.02, False, True, 0.35)
