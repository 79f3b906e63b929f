"""Frame renderer: shapes, determinism, masks that match the drawn polyps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from endoked.synth.frames import FrameSpec, PolypSpec, fov_mask, render_frame, texture_bank

SIZE = 96


def _render(seed: int, spec: FrameSpec) -> tuple[np.ndarray, np.ndarray]:
    return render_frame(np.random.default_rng(seed), SIZE, spec, texture_bank(0, SIZE))


def test_shapes_dtypes_and_black_surround() -> None:
    img, mask = _render(1, FrameSpec())
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    assert mask.shape == (SIZE, SIZE) and mask.dtype == np.uint8 and not mask.any()
    assert img[0, 0].max() == 0 and img[-1, -1].max() == 0  # corners outside the field of view
    centre = img[SIZE // 4 : 3 * SIZE // 4, SIZE // 4 : 3 * SIZE // 4].astype(float)
    assert centre.mean() > 20
    # mucosa is reddish: red channel dominates where it is lit
    lit = centre.sum(axis=2) > 150
    assert (centre[..., 0][lit] > centre[..., 2][lit]).mean() > 0.9


def test_deterministic_for_a_generator_state() -> None:
    spec = FrameSpec(polyps=(PolypSpec(0.1, "dome"),))
    a = _render(7, spec)
    b = _render(7, spec)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], _render(8, spec)[0])


@pytest.mark.parametrize("kind", ["dome", "ellipse", "lobulated", "flat"])
def test_polyp_mask_area_follows_spec(kind: str) -> None:
    areas = []
    for seed in range(6):
        _, mask = _render(seed, FrameSpec(polyps=(PolypSpec(0.08, kind),)))
        assert set(np.unique(mask)) <= {0, 255}
        areas.append((mask > 0).sum())
    fov_area = math.pi * (SIZE / 2) ** 2
    ratio = np.median(areas) / (0.08 * fov_area)
    assert 0.4 < ratio < 1.6, ratio


def test_polyp_changes_pixels_under_its_mask_only_mostly() -> None:
    base_img, _ = _render(3, FrameSpec())
    img, mask = _render(3, FrameSpec(polyps=(PolypSpec(0.12, "dome"),)))
    inside = mask > 0
    assert inside.sum() > 50
    # same generator state up to the lesion: the polyp region differs from the polyp-free frame
    diff = np.abs(img.astype(int) - base_img.astype(int)).sum(axis=2)
    assert diff[inside].mean() > 5


def test_mask_inside_field_of_view_and_masses_have_none() -> None:
    for seed in range(8):
        _, mask = _render(seed, FrameSpec(polyps=(PolypSpec(0.2, "lobulated"), PolypSpec(0.05, "dome"))))
        assert mask[0, 0] == 0 and mask[-1, -1] == 0 and mask.any()
    _, mask = _render(1, FrameSpec(polyps=(PolypSpec(0.3, "mass"),)))
    assert not mask.any()


def test_fov_mask_shapes() -> None:
    circ = fov_mask(64, "circle", 1.0)
    octa = fov_mask(64, "octagon", 1.0)
    assert circ.dtype == np.float32 and circ[32, 32] == 1 and circ[0, 0] == 0
    assert octa[0, 0] == 0 and octa[32, 0] > 0.5
    assert 0.7 < circ.mean() < 0.85  # pi/4 of the square
