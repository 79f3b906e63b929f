"""The ``sam2`` segmenter: SAM 2 / SAM 2.1 from the official ``sam2`` package with a user-supplied checkpoint.

Install with ``pip install 'endoked[sam2]'`` (or ``pip install sam2``; it builds from source: without a CUDA
toolkit set ``SAM2_BUILD_CUDA=0``, its optional CUDA extension only fills small holes in masks, unused here;
docs/prompt_seg.md) and download the checkpoint of the chosen ``prompt_seg.sam2_config`` (e.g.
``sam2.1_hiera_tiny.pt`` for ``sam2.1_hiera_t``; :data:`CONFIGS`) on a machine with internet; point
``prompt_seg.weights`` to it. Nothing is downloaded here.

The model is built by the package's ``build_sam2`` from its Hydra config (with its image-predictor defaults,
e.g. the fall-back to the best multimask output when the single mask is unstable); the image is embedded by
its ``SAM2ImagePredictor`` (resized to 1024×1024, ImageNet mean/std). Boxes are decoded here with the model's
prompt encoder and mask decoder exactly as ``SAM2ImagePredictor`` decodes box prompts (box corners as points
labelled 2 and 3, scaled per axis into the 1024 grid), which keeps the 256×256 low-resolution logits of every
box: they cover the whole image, and bilinear resizing to the image with a threshold at 0 gives the masks.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from endoked.device import resolve_device
from endoked.errors import ConfigError
from endoked.prompt_seg.base import BoxPromptSegmenter, best_mask, resolve_decode_batch
from endoked.prompt_seg.checkpoints import CheckpointSource, load_checkpoint

logger = logging.getLogger(__name__)

BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"
#: ``prompt_seg.sam2_config`` (the package's config names) -> its checkpoint file under :data:`BASE_URL`.
CONFIGS: dict[str, str] = {
    "sam2.1_hiera_t": "092824/sam2.1_hiera_tiny.pt",
    "sam2.1_hiera_s": "092824/sam2.1_hiera_small.pt",
    "sam2.1_hiera_b+": "092824/sam2.1_hiera_base_plus.pt",
    "sam2.1_hiera_l": "092824/sam2.1_hiera_large.pt",
    "sam2_hiera_t": "072824/sam2_hiera_tiny.pt",
    "sam2_hiera_s": "072824/sam2_hiera_small.pt",
    "sam2_hiera_b+": "072824/sam2_hiera_base_plus.pt",
    "sam2_hiera_l": "072824/sam2_hiera_large.pt",
}
SOURCE = CheckpointSource(
    label="SAM 2",
    module="sam2",
    distribution="sam2",
    install="pip install 'endoked[sam2]' (or pip install sam2; SAM2_BUILD_CUDA=0 without a CUDA toolkit)",
    download=f"download the checkpoint of prompt_seg.sam2_config (e.g. sam2.1_hiera_tiny.pt for sam2.1_hiera_t) "
    f"from {BASE_URL}/092824/ (SAM 2.1) or {BASE_URL}/072824/ (SAM 2)",
    variant_key="prompt_seg.sam2_config",
)


def config_file(config: str) -> str:
    """The package's Hydra config path of a :data:`CONFIGS` name, e.g. ``configs/sam2.1/sam2.1_hiera_t.yaml``."""
    if config not in CONFIGS:
        raise ConfigError(f"prompt_seg.sam2_config {config!r} is not one of {', '.join(CONFIGS)}")
    family = "sam2.1" if config.startswith("sam2.1_") else "sam2"
    return f"configs/{family}/{config}.yaml"


def build_model(config: str, path: Path | None, overrides: Sequence[str] = ()) -> torch.nn.Module:
    """A SAM 2 model (on the CPU, eval mode) built by ``sam2.build_sam.build_sam2``, ``path`` loaded strictly.

    Args:
        config: a :data:`CONFIGS` name.
        path: checkpoint file (``{"model": state_dict}`` as released); ``None`` keeps the random initialisation.
        overrides: extra Hydra overrides of the config (e.g. a smaller trunk).
    """
    cfg = config_file(config)
    SOURCE.import_package(Sam2Segmenter.name)
    from sam2.build_sam import build_sam2

    model: torch.nn.Module = build_sam2(cfg, ckpt_path=None, device="cpu", hydra_overrides_extra=list(overrides))
    if path is not None:
        load_checkpoint(model, path, f"SAM 2 {config}")
        logger.info("SAM 2 %s weights loaded from %s", config, path)
    return model


class Sam2Segmenter(BoxPromptSegmenter):
    """SAM 2 / SAM 2.1, box-prompted.

    Args:
        weights: checkpoint matching ``config``; required unless ``model`` is given.
        config: the model variant, a :data:`CONFIGS` name (``sam2.1_hiera_t`` … ``sam2_hiera_l``).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        multimask: decode three masks per box and keep the one with the highest predicted IoU.
        decode_batch: boxes per mask-decoder call (0 = all at once; ``None``: one on CPU, all elsewhere).
        model: an already built ``SAM2Base`` module (``weights``/``config`` are then not used).
    """

    name = "sam2"

    def __init__(
        self,
        weights: str | Path | None = None,
        config: str = "sam2.1_hiera_t",
        device: str = "auto",
        multimask: bool = False,
        decode_batch: int | None = None,
        model: torch.nn.Module | None = None,
    ) -> None:
        super().__init__()
        if model is None:
            config_file(config)  # an unknown name is a config error, whatever is installed
        SOURCE.import_package(self.name)
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.device = resolve_device(device)
        self.multimask = multimask
        self.decode_batch = resolve_decode_batch(decode_batch, self.device)
        if model is None:
            model = build_model(config, SOURCE.resolve(weights, self.name))
        model = model.eval().to(self.device)
        with warnings.catch_warnings():
            # The predictor scripts its resize/normalise transform with torch.jit.script (deprecated in recent torch).
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)
            self.predictor: Any = SAM2ImagePredictor(model)
        self.model: Any = model

    @torch.inference_mode()
    def _embed(self, image: np.ndarray) -> None:
        self.predictor.set_image(image)

    def _reset(self) -> None:
        self.predictor.reset_predictor()

    @torch.inference_mode()
    def predict_logits(self, boxes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution mask logits ``(N, 256, 256)`` over the whole (square-resized) image and predicted
        IoUs ``(N,)`` for checked boxes in the image frame."""
        features = self.predictor._features
        if features is None:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        h, w = self.image_size
        size = float(self.model.image_size)
        box_t = torch.as_tensor(boxes, dtype=torch.float32, device=self.device).reshape(-1, 2, 2)
        scale = torch.tensor([w, h], dtype=torch.float32, device=self.device)
        coords = box_t / scale * size  # SAM2Transforms.transform_boxes(normalize=True)
        labels = torch.tensor([[2, 3]], dtype=torch.int, device=self.device).repeat(len(coords), 1)
        pe = self.model.sam_prompt_encoder
        sparse, dense = pe(points=(coords, labels), boxes=None, masks=None)
        logits, iou, _, _ = self.model.sam_mask_decoder(
            image_embeddings=features["image_embed"],
            image_pe=pe.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.multimask,
            repeat_image=len(coords) > 1,
            high_res_features=features["high_res_feats"],
        )
        return best_mask(logits, iou)

    @torch.inference_mode()
    def predict_lowres(self, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mask logits ``(N, 256, 256)`` covering the whole image and scores; see
        :meth:`BoxPromptSegmenter.predict_lowres` (the base class's :meth:`upsample_logits` turns them into
        exactly the masks :meth:`predict` returns)."""
        side = self.model.image_size // 4  # the decoder's low-resolution grid
        return self._lowres_in_chunks(boxes_xyxy, self.predict_logits, lambda: (side, side))

    @torch.inference_mode()
    def _predict(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, iou = self.predict_logits(boxes)
        up = F.interpolate(logits.float()[:, None], size=self.image_size, mode="bilinear", align_corners=False)
        return (up[:, 0] > 0).cpu().numpy(), iou.float().cpu().numpy()
