"""The ``sam`` segmenter: the official ``segment-anything`` package with a user-supplied checkpoint.

Install with ``pip install 'endoked[sam]'`` (or ``pip install segment-anything``) and download a checkpoint
(``sam_vit_b_01ec64.pth``, ``sam_vit_l_0b3195.pth`` or ``sam_vit_h_4b8939.pth`` from
https://github.com/facebookresearch/segment-anything#model-checkpoints) on a machine with internet; point
``prompt_seg.weights`` to it. Nothing is downloaded here.

:func:`build_sam` (the model from ``sam_model_registry`` with a checkpoint loaded strictly) is shared with the
``medsam`` segmenter, whose model is SAM ViT-B.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked.device import resolve_device
from endoked.errors import ConfigError
from endoked.prompt_seg.base import BoxPromptSegmenter, best_mask, resolve_decode_batch
from endoked.prompt_seg.checkpoints import CheckpointSource, load_checkpoint

logger = logging.getLogger(__name__)

MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
SOURCE = CheckpointSource(
    label="SAM",
    module="segment_anything",
    distribution="segment-anything",
    install="pip install 'endoked[sam]' (or pip install segment-anything)",
    download="download sam_vit_b_01ec64.pth / sam_vit_l_0b3195.pth / sam_vit_h_4b8939.pth from "
    "https://dl.fbaipublicfiles.com/segment_anything/",
    variant_key="prompt_seg.sam_model_type",
)


def build_sam(sam_pkg: Any, model_type: str, path: Path | None, what: str) -> torch.nn.Module:
    """A SAM model of ``model_type`` from ``segment_anything.sam_model_registry``, ``path`` loaded strictly.

    Args:
        sam_pkg: the imported ``segment_anything`` package.
        model_type: ``vit_b``, ``vit_l`` or ``vit_h``.
        path: checkpoint file; ``None`` keeps the random initialisation.
        what: the model in messages (``SAM vit_b``, ``MedSAM``).
    """
    model: torch.nn.Module = sam_pkg.sam_model_registry[model_type](checkpoint=None)
    if path is not None:
        load_checkpoint(model, path, what)
        logger.info("%s weights loaded from %s", what, path)
    return model


class SamSegmenter(BoxPromptSegmenter):
    """Segment Anything, box-prompted.

    Args:
        weights: SAM checkpoint (``.pth``) matching ``model_type``; required unless ``random_init``.
        model_type: ``vit_b``, ``vit_l`` or ``vit_h``.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        multimask: decode three masks per box and keep the one with the highest predicted IoU.
        decode_batch: boxes per mask-decoder call (0 = all at once; ``None``: one on CPU, all elsewhere).
        random_init: build the model with random weights (plumbing tests only; masks are meaningless).
        model: an already built ``Sam`` module (overrides ``weights``/``model_type``).
    """

    name = "sam"

    def __init__(
        self,
        weights: str | Path | None = None,
        model_type: str = "vit_b",
        device: str = "auto",
        multimask: bool = False,
        decode_batch: int | None = None,
        random_init: bool = False,
        model: torch.nn.Module | None = None,
        **_ignored: Any,
    ) -> None:
        super().__init__()
        sam_pkg = SOURCE.import_package(self.name)
        self.device = resolve_device(device)
        self.multimask = multimask
        self.decode_batch = resolve_decode_batch(decode_batch, self.device)
        if model is None:
            if model_type not in MODEL_TYPES:
                raise ConfigError(f"prompt_seg.sam_model_type {model_type!r} is not one of {', '.join(MODEL_TYPES)}")
            path = None if random_init else SOURCE.resolve(weights, self.name)
            model = build_sam(sam_pkg, model_type, path, f"SAM {model_type}")
        model.eval().to(self.device)
        self.predictor = sam_pkg.SamPredictor(model)

    @torch.inference_mode()
    def _embed(self, image: np.ndarray) -> None:
        self.predictor.set_image(image, image_format="RGB")

    def _reset(self) -> None:
        self.predictor.reset_image()

    @torch.inference_mode()
    def _predict(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred = self.predictor
        box_t = torch.as_tensor(boxes, dtype=torch.float32, device=pred.device)
        box_t = pred.transform.apply_boxes_torch(box_t, pred.original_size)
        masks, iou, _ = pred.predict_torch(
            point_coords=None, point_labels=None, boxes=box_t, multimask_output=self.multimask
        )
        masks, iou = best_mask(masks, iou)
        return masks.cpu().numpy(), iou.float().cpu().numpy()
