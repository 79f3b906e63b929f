"""The ``sam2`` segmenter: config names, messages, and a tiny random SAM 2.1 built by the sam2 package's own
``build_sam2`` from its Hydra config (Hiera trunk shrunk by overrides, every other module as configured), loaded
strictly from a checkpoint in the released ``{"model": state_dict}`` form and checked against the package's
``SAM2ImagePredictor``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import torch

from endoked.errors import BackendUnavailableError, ConfigError, WeightsNotFoundError
from endoked.prompt_seg import create_segmenter
from endoked.prompt_seg.config import PromptSegConfig
from endoked.prompt_seg.sam2 import CONFIGS, config_file
from tests.prompt_seg.tiny_models import TINY_SAM2_OVERRIDES

HAS_SAM2 = importlib.util.find_spec("sam2") is not None
needs_sam2 = pytest.mark.skipif(not HAS_SAM2, reason="sam2 not installed: pip install 'endoked[sam2]'")


def test_config_names_are_the_packages() -> None:
    assert config_file("sam2.1_hiera_t") == "configs/sam2.1/sam2.1_hiera_t.yaml"
    assert config_file("sam2.1_hiera_b+") == "configs/sam2.1/sam2.1_hiera_b+.yaml"
    assert config_file("sam2_hiera_l") == "configs/sam2/sam2_hiera_l.yaml"
    assert set(get_args(PromptSegConfig.model_fields["sam2_config"].annotation)) == set(CONFIGS)
    assert PromptSegConfig().sam2_config == "sam2.1_hiera_t"
    with pytest.raises(ConfigError, match=r"sam2_config 'sam3_hiera_t' is not one of sam2\.1_hiera_t, "):
        config_file("sam3_hiera_t")
    with pytest.raises(ConfigError, match="sam2_config"):
        create_segmenter("sam2", config="hiera_t", device="cpu")


@needs_sam2
def test_every_config_is_in_the_package() -> None:
    import sam2  # noqa: F401  (registers the package's configs with Hydra)
    from hydra import compose

    for name in CONFIGS:
        assert compose(config_name=config_file(name)).model.image_size == 1024


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sam2", None)
    with pytest.raises(BackendUnavailableError, match=r"'sam2' needs the sam2 package: pip install 'endoked\[sam2\]'"):
        create_segmenter("sam2", device="cpu")


@needs_sam2
def test_missing_checkpoint_says_where_to_get_it(tmp_path: Path) -> None:
    msg = r"sam2\.1_hiera_tiny\.pt.*dl\.fbaipublicfiles\.com/segment_anything_2/092824.*prompt_seg\.weights"
    with pytest.raises(WeightsNotFoundError, match=msg):
        create_segmenter("sam2", device="cpu")
    with pytest.raises(WeightsNotFoundError, match=r"not found at .*none\.pt.*prompt_seg\.sam2_config"):
        create_segmenter("sam2", weights=str(tmp_path / "none.pt"), device="cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A tiny SAM 2.1 checkpoint as released (``{"model": state_dict}``) and its state dict."""
    if not HAS_SAM2:
        pytest.skip("sam2 not installed: pip install 'endoked[sam2]'")
    from endoked.prompt_seg.sam2 import build_model

    torch.manual_seed(0)
    state = build_model("sam2.1_hiera_t", None, TINY_SAM2_OVERRIDES).state_dict()
    path = tmp_path_factory.mktemp("sam2") / "tiny.pt"
    torch.save({"model": state}, path)
    return path, state


def test_checkpoint_loads_strictly(tiny: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path) -> None:
    from endoked.prompt_seg.sam2 import build_model

    path, state = tiny
    loaded = build_model("sam2.1_hiera_t", path, TINY_SAM2_OVERRIDES).state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    with pytest.raises(WeightsNotFoundError, match=r"SAM 2 sam2\.1_hiera_t checkpoint .*tiny\.pt does not fit"):
        build_model("sam2.1_hiera_t", path)  # the full-size trunk: the tiny checkpoint does not fit it
    partial = {k: v for k, v in state.items() if not k.startswith("sam_mask_decoder.iou_token")}
    torch.save({"model": partial}, tmp_path / "partial.pt")
    with pytest.raises(WeightsNotFoundError, match=r"partial\.pt does not fit.*sam_mask_decoder\.iou_token"):
        build_model("sam2.1_hiera_t", tmp_path / "partial.pt", TINY_SAM2_OVERRIDES)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def sam2_seg(tiny: tuple[Path, dict[str, torch.Tensor]], image: np.ndarray) -> Any:
    from endoked.prompt_seg.sam2 import build_model

    seg = create_segmenter(
        "sam2", model=build_model("sam2.1_hiera_t", tiny[0], TINY_SAM2_OVERRIDES), device="cpu", decode_batch=0
    )
    seg.set_image(image)
    return seg


BOXES = np.array([[15, 10, 45, 30], [0, 0, 60, 40], [5, 20, 12, 39]], dtype=np.float32)


def test_box_corners_reach_the_prompt_encoder_in_the_1024_grid(sam2_seg: Any) -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    pe = sam2_seg.model.sam_prompt_encoder
    hook = pe.register_forward_pre_hook(lambda _m, _a, kw: seen.append(kw["points"]), with_kwargs=True)
    try:
        sam2_seg.predict(BOXES[:1])
    finally:
        hook.remove()
    ((coords, labels),) = seen
    np.testing.assert_allclose(coords.numpy(), [[[256, 256], [768, 768]]], rtol=1e-6)  # x / 60, y / 40, * 1024
    assert labels.tolist() == [[2, 3]]  # the top-left and bottom-right corner labels of a box


@pytest.mark.parametrize("multimask", [False, True])
def test_masks_equal_the_packages_image_predictor(sam2_seg: Any, image: np.ndarray, multimask: bool) -> None:
    sam2_seg.multimask = multimask
    try:
        masks, scores = sam2_seg.predict(BOXES)
        logits, lowres_scores = sam2_seg.predict_lowres(BOXES)
    finally:
        sam2_seg.multimask = False
    assert masks.shape == (3, 40, 60) and masks.dtype == bool
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert logits.shape == (3, 256, 256)  # the whole square-resized image
    np.testing.assert_array_equal(sam2_seg.upsample_logits(logits), masks)
    np.testing.assert_allclose(lowres_scores, scores, atol=1e-6)
    # The package's own predictor on the same model and image.
    ref_masks, ref_iou, _ = sam2_seg.predictor.predict(box=BOXES, multimask_output=multimask)
    best = ref_iou.argmax(axis=1)
    np.testing.assert_array_equal(masks, ref_masks[np.arange(3), best].astype(bool))
    np.testing.assert_allclose(scores, ref_iou[np.arange(3), best], atol=1e-5)
    assert multimask == (ref_masks.shape[1] == 3)


def test_chunked_decoding_equals_one_batch(sam2_seg: Any) -> None:
    masks, scores = sam2_seg.predict(BOXES)
    sam2_seg.decode_batch = 1
    try:
        chunked, chunked_scores = sam2_seg.predict(BOXES)
    finally:
        sam2_seg.decode_batch = None
    np.testing.assert_array_equal(chunked, masks)
    np.testing.assert_allclose(chunked_scores, scores, atol=1e-5)
    empty, empty_scores = sam2_seg.predict(np.zeros((0, 4)))
    assert empty.shape == (0, 40, 60) and empty_scores.shape == (0,)
