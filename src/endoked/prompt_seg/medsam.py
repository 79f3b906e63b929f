"""The ``medsam`` segmenter: MedSAM (SAM ViT-B fine-tuned on medical images) with its own pre-processing.

The model is ``segment_anything``'s ViT-B (:func:`endoked.prompt_seg.sam.build_sam`, so ``pip install
'endoked[sam]'``); the checkpoint ``medsam_vit_b.pth`` is linked from the README of
https://github.com/bowang-lab/MedSAM; download it on a machine with internet and set ``prompt_seg.weights`` to it.

Inference follows MedSAM's ``MedSAM_Inference.py``, which differs from SAM's predictor:

- the image is resized to 1024×1024 (both sides, no aspect-preserving resize and no padding) with
  ``skimage.transform.resize(order=3, preserve_range=True, anti_aliasing=True)`` and cast to uint8;
- it is min-max scaled to ``[0, 1]`` over the whole image (``(x - min) / max(max - min, 1e-8)``) and goes
  straight into the image encoder: no ImageNet mean/std;
- boxes are scaled per axis into the 1024 grid (``box / [W, H, W, H] * 1024``);
- the mask decoder runs single-mask (``multimask_output=False``); the 256×256 low-resolution logits cover the
  whole image, their sigmoid is resized bilinearly to the original size and thresholded at 0.5.

The resize here is that skimage call written with SciPy (a Gaussian blur of ``(factor - 1) / 2`` on downscaled
axes, cubic-spline zoom, mirror boundaries, output clipped to the input's range), one colour plane at a time:
five to eight times faster than resizing the ``(H, W, 3)`` array at once and the same up to floating-point
rounding, which moves the rare value that lands on an integer by one grey level before the uint8 cast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from endoked.device import resolve_device
from endoked.errors import ConfigError
from endoked.prompt_seg.base import BoxPromptSegmenter, resolve_decode_batch
from endoked.prompt_seg.checkpoints import CheckpointSource
from endoked.prompt_seg.sam import build_sam

logger = logging.getLogger(__name__)

INPUT_SIZE = 1024
SOURCE = CheckpointSource(
    label="MedSAM",
    module="segment_anything",
    distribution="segment-anything",
    install="pip install 'endoked[sam]' (or pip install segment-anything)",
    download="download medsam_vit_b.pth (linked from the README of https://github.com/bowang-lab/MedSAM)",
)


def resize_square(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """``(size, size, C) uint8``: MedSAM's ``resize(image, (size, size), order=3, preserve_range=True,
    anti_aliasing=True).astype(np.uint8)`` (see the module docstring).

    Args:
        image: ``(H, W, C) uint8``.
    """
    h, w = image.shape[:2]
    factors = np.array([h / size, w / size])
    sigma = np.maximum(0.0, (factors - 1) / 2)  # anti-aliasing, on downscaled axes only
    out = np.empty((size, size, image.shape[2]), dtype=np.float64)
    for c in range(image.shape[2]):
        plane = image[..., c].astype(np.float64)
        if np.any(sigma > 0):
            plane = ndimage.gaussian_filter(plane, sigma, mode="mirror")
        out[..., c] = ndimage.zoom(plane, (size / h, size / w), order=3, mode="mirror", grid_mode=True)
    np.clip(out, float(image.min()), float(image.max()), out=out)
    return out.astype(np.uint8)  # truncation, as the reference's astype


def preprocess(image: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """MedSAM's encoder input: ``(size, size, 3) float32`` in ``[0, 1]``.

    Args:
        image: ``(H, W, 3) uint8`` RGB.
    """
    resized = resize_square(image, size).astype(np.float64)
    lo, hi = resized.min(), resized.max()
    return ((resized - lo) / max(hi - lo, 1e-8)).astype(np.float32)


def scale_boxes(boxes: np.ndarray, image_size: tuple[int, int], size: int = INPUT_SIZE) -> np.ndarray:
    """``(N, 4)`` xyxy boxes from the image's pixels to the ``size``×``size`` model grid (``float32``)."""
    h, w = image_size
    return (np.asarray(boxes, dtype=np.float64) / np.array([w, h, w, h]) * size).astype(np.float32)


class MedSamSegmenter(BoxPromptSegmenter):
    """MedSAM, box-prompted, one mask per box.

    Args:
        weights: ``medsam_vit_b.pth``; required unless ``model`` is given.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        multimask: must be False: MedSAM was fine-tuned and is run with a single mask output.
        decode_batch: boxes per mask-decoder call (0 = all at once; ``None``: one on CPU, all elsewhere).
        model: an already built SAM ViT-B module with MedSAM weights (``weights`` is then not read).

    The score of a mask is the decoder's predicted IoU (MedSAM's own inference does not use it).
    """

    name = "medsam"

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str = "auto",
        multimask: bool = False,
        decode_batch: int | None = None,
        model: torch.nn.Module | None = None,
    ) -> None:
        super().__init__()
        if multimask:
            raise ConfigError(
                "segmenter 'medsam' decodes one mask per box (MedSAM is fine-tuned single-mask); "
                "set prompt_seg.multimask=false"
            )
        sam_pkg = SOURCE.import_package(self.name)
        self.device = resolve_device(device)
        self.decode_batch = resolve_decode_batch(decode_batch, self.device)
        if model is None:
            model = build_sam(sam_pkg, "vit_b", SOURCE.resolve(weights, self.name), "MedSAM (SAM ViT-B)")
        self.model: Any = model.eval().to(self.device)
        self._embedding: torch.Tensor | None = None
        self._dense_pe: torch.Tensor | None = None

    @torch.inference_mode()
    def _embed(self, image: np.ndarray) -> None:
        x = torch.from_numpy(preprocess(image)).permute(2, 0, 1)[None].to(self.device)
        self._embedding = self.model.image_encoder(x)

    def _reset(self) -> None:
        self._embedding = None

    @torch.inference_mode()
    def predict_logits(self, boxes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution mask logits ``(N, 256, 256)`` over the whole (square-resized) image and predicted
        IoUs ``(N,)`` for checked boxes in the image frame."""
        if self._embedding is None:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        box_t = torch.from_numpy(scale_boxes(boxes, self.image_size)).to(self.device)[:, None, :]
        pe = self.model.prompt_encoder
        sparse, dense = pe(points=None, boxes=box_t, masks=None)
        if self._dense_pe is None:  # the positional encoding of the embedding grid is the same for every call
            self._dense_pe = pe.get_dense_pe()
        logits, iou = self.model.mask_decoder(
            image_embeddings=self._embedding,
            image_pe=self._dense_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        return logits[:, 0], iou[:, 0]

    @torch.inference_mode()
    def predict_lowres(self, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mask logits ``(N, 256, 256)`` covering the whole image and scores; see
        :meth:`BoxPromptSegmenter.predict_lowres`."""
        return self._lowres_in_chunks(boxes_xyxy, self.predict_logits, lambda: (256, 256))

    def _upsample(self, logits: torch.Tensor) -> torch.Tensor:
        """MedSAM's mask: the sigmoid of the logits resized bilinearly to the image, above 0.5."""
        prob = torch.sigmoid(logits.float())[:, None]
        return F.interpolate(prob, size=self.image_size, mode="bilinear", align_corners=False)[:, 0] > 0.5

    @torch.inference_mode()
    def upsample_logits(self, logits: np.ndarray) -> np.ndarray:
        """Image-size masks from :meth:`predict_lowres` logits, exactly as :meth:`predict` makes them."""
        t = torch.as_tensor(np.asarray(logits, dtype=np.float32), device=self.device)
        return self._upsample(t).cpu().numpy()

    @torch.inference_mode()
    def _predict(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, iou = self.predict_logits(boxes)
        return self._upsample(logits).cpu().numpy(), iou.float().cpu().numpy()
