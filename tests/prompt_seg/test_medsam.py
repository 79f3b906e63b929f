"""The ``medsam`` segmenter: MedSAM's own pre-processing (golden values of the reference ``MedSAM_Inference.py``
resize), per-axis box scaling, the sigmoid-then-resize mask, the strict ViT-B checkpoint loader and its
messages. The model is a tiny random SAM built by segment-anything's own code (tests/prompt_seg/tiny_models.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from endoked.errors import BackendUnavailableError, ConfigError, WeightsNotFoundError
from endoked.prompt_seg import create_segmenter
from endoked.prompt_seg.medsam import preprocess, resize_square, scale_boxes
from tests.prompt_seg.tiny_models import tiny_sam

HAS_SAM = importlib.util.find_spec("segment_anything") is not None
needs_sam = pytest.mark.skipif(not HAS_SAM, reason="segment-anything not installed: pip install 'endoked[sam]'")

# A 2x3 RGB image and its MedSAM input at a few pixels of the 1024 grid, from the reference's own call
# skimage.transform.resize(img, (1024, 1024), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
# (uint8 values; over the whole resized image min 0 and max 254, so the normalised input is value / 254).
IMAGE_2X3 = np.array(
    [[[10, 200, 30], [60, 90, 250], [120, 15, 75]], [[255, 0, 128], [33, 177, 5], [90, 140, 220]]], np.uint8
)
GOLDEN_2X3 = {
    (0, 0): (92, 118, 96),
    (0, 1023): (73, 103, 144),
    (1023, 1023): (73, 103, 143),
    (511, 511): (46, 133, 127),
    (256, 700): (103, 31, 152),
    (800, 100): (232, 17, 111),
}


def test_preprocess_golden_values_of_the_reference() -> None:
    x = preprocess(IMAGE_2X3)
    assert x.shape == (1024, 1024, 3) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0  # min-max over the whole image, no ImageNet mean/std
    for (y, xx), rgb in GOLDEN_2X3.items():
        np.testing.assert_allclose(x[y, xx], np.array(rgb) / 254, rtol=0, atol=1e-7, err_msg=f"pixel {(y, xx)}")
    # Both sides go to 1024 (no aspect-preserving resize, no padding): the last row carries image content where
    # SAM's pre-processing (longest side 1024, 683 rows, zero padding) would have padding.
    assert x[1023].max() > 0.25


def test_preprocess_constant_image_is_zero() -> None:
    x = preprocess(np.full((5, 7, 3), 90, np.uint8))
    assert x.shape == (1024, 1024, 3) and not x.any()  # (x - min) / max(max - min, 1e-8)


def test_resize_matches_the_reference_resize() -> None:
    transform = pytest.importorskip("skimage.transform", reason="scikit-image gives the reference resize")
    rng = np.random.default_rng(1)
    down = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)  # both axes downscaled: anti-aliasing blur
    down[40:90, 50:120] = (200, 80, 60)
    up = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for image in (down, up):
        ref = transform.resize(image, (64, 64), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
        ours = resize_square(image, 64)
        assert ours.shape == ref.shape == (64, 64, 3) and ours.dtype == np.uint8
        diff = np.abs(ours.astype(int) - ref)
        # the same maths; floating-point rounding moves a rare value that lands on an integer by one grey level
        assert diff.max() <= 1 and (diff > 0).mean() < 0.002


def test_boxes_scale_per_axis_into_the_1024_grid() -> None:
    np.testing.assert_allclose(scale_boxes(np.array([[1, 0, 3, 2]]), (2, 3)), [[1024 / 3, 0, 1024, 1024]])
    np.testing.assert_array_equal(scale_boxes(np.array([[50, 25, 150, 75]]), (100, 200)), [[256, 256, 768, 768]])


def _checkpoint(tmp_path: Path, wrap: bool = False) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    state = tiny_sam().state_dict()
    path = tmp_path / "medsam_vit_b.pth"
    torch.save({"model": state} if wrap else state, path)
    return path, state


@pytest.fixture
def tiny_vit_b(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``sam_model_registry["vit_b"]`` builds the tiny SAM; returns the checkpoint arguments it was called with."""
    import segment_anything

    calls: list[Any] = []

    def build(checkpoint: Any = None) -> torch.nn.Module:
        calls.append(checkpoint)
        return tiny_sam(checkpoint)

    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", build)
    return calls


@needs_sam
@pytest.mark.parametrize("wrap", [False, True])
def test_checkpoint_loads_strictly_into_vit_b(tmp_path: Path, tiny_vit_b: list[Any], wrap: bool) -> None:
    path, state = _checkpoint(tmp_path, wrap)
    seg = create_segmenter("medsam", weights=str(path), device="cpu")
    assert tiny_vit_b == [None]  # SAM ViT-B from the registry, the weights loaded here
    loaded = seg.model.state_dict()  # type: ignore[attr-defined]
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


@needs_sam
def test_checkpoint_errors_name_the_file(tmp_path: Path, tiny_vit_b: list[Any]) -> None:
    path, state = _checkpoint(tmp_path)
    del state["mask_decoder.iou_token.weight"]
    torch.save(state, path)
    with pytest.raises(WeightsNotFoundError, match=r"medsam_vit_b\.pth does not fit.*iou_token"):
        create_segmenter("medsam", weights=str(path), device="cpu")
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsNotFoundError, match=r"medsam_vit_b\.pth cannot be read"):
        create_segmenter("medsam", weights=str(path), device="cpu")


@needs_sam
def test_missing_checkpoint_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match=r"medsam_vit_b\.pth.*bowang-lab/MedSAM.*prompt_seg\.weights"):
        create_segmenter("medsam", device="cpu")
    with pytest.raises(WeightsNotFoundError, match=r"not found at .*none\.pth"):
        create_segmenter("medsam", weights=str(tmp_path / "none.pth"), device="cpu")
    with pytest.raises(ConfigError, match="single-mask"):
        create_segmenter("medsam", multimask=True, device="cpu")


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segment_anything", None)
    with pytest.raises(BackendUnavailableError, match=r"'medsam' needs the segment-anything package.*endoked\[sam\]"):
        create_segmenter("medsam", device="cpu")


@pytest.fixture(scope="module")
def medsam() -> Any:
    if not HAS_SAM:
        pytest.skip("segment-anything not installed: pip install 'endoked[sam]'")
    torch.manual_seed(0)
    seg = create_segmenter("medsam", model=tiny_sam(), device="cpu", decode_batch=0)
    rng = np.random.default_rng(0)
    seg.set_image(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    return seg


BOXES = np.array([[15, 10, 45, 30], [0, 0, 60, 40], [5, 20, 12, 39]], dtype=np.float32)


def test_prompts_reach_the_decoder_in_the_1024_grid(medsam: Any) -> None:
    seen: list[torch.Tensor] = []
    pe = medsam.model.prompt_encoder
    hook = pe.register_forward_pre_hook(lambda _m, _a, kw: seen.append(kw["boxes"].clone()), with_kwargs=True)
    try:
        medsam.predict(BOXES[:1])
    finally:
        hook.remove()
    (boxes,) = seen
    assert boxes.shape == (1, 1, 4)  # one box per prompt
    np.testing.assert_allclose(boxes[0, 0].numpy(), [256, 256, 768, 768], rtol=1e-6)  # x / 60 * 1024, y / 40 * 1024


def test_masks_at_image_size_equal_upsampled_lowres(medsam: Any) -> None:
    masks, scores = medsam.predict(BOXES)
    assert masks.shape == (3, 40, 60) and masks.dtype == bool
    assert scores.shape == (3,) and scores.dtype == np.float32 and np.all(np.isfinite(scores))
    logits, lowres_scores = medsam.predict_lowres(BOXES)
    assert logits.shape == (3, 256, 256)  # the whole square-resized image, nothing to crop
    np.testing.assert_array_equal(medsam.upsample_logits(logits), masks)
    np.testing.assert_allclose(lowres_scores, scores, atol=1e-6)
    medsam.decode_batch = 2  # two decoder calls, same result
    try:
        chunked, chunked_scores = medsam.predict(BOXES)
    finally:
        medsam.decode_batch = None
    np.testing.assert_array_equal(chunked, masks)
    np.testing.assert_allclose(chunked_scores, scores, atol=1e-5)


def test_logits_of_a_box_region_give_that_box(medsam: Any) -> None:
    # Logits positive exactly on the box's cells of the 256 grid (box / 4 in the 1024 grid) -> the box in the image.
    x0, y0, x1, y1 = (scale_boxes(BOXES[:1], (40, 60))[0] / 4).astype(int)
    logits = np.full((1, 256, 256), -10.0, np.float32)
    logits[0, y0:y1, x0:x1] = 10.0
    expected = np.zeros((40, 60), bool)
    expected[10:30, 15:45] = True
    np.testing.assert_array_equal(medsam.upsample_logits(logits)[0], expected)


@needs_sam
def test_mask_is_the_resized_sigmoid_above_one_half() -> None:
    # Between a -1 and a 10 logit, one quarter of the way: resized logits say inside (0.75 * -1 + 0.25 * 10 > 0),
    # MedSAM's resized sigmoid says outside (0.75 * 0.27 + 0.25 * 1.0 < 0.5).
    seg = create_segmenter("medsam", model=tiny_sam(), device="cpu")
    seg.set_image(np.zeros((2, 4, 3), np.uint8))
    mask = seg.upsample_logits(np.array([[[-1.0, 10.0], [-1.0, 10.0]]], np.float32))
    np.testing.assert_array_equal(mask[0], [[False, False, True, True]] * 2)
