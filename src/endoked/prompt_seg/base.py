"""The box-prompted segmenter interface and its registry.

Every backend follows segment-anything's predictor pattern: :meth:`BoxPromptSegmenter.set_image` computes
the (expensive) image embedding once; :meth:`BoxPromptSegmenter.predict` then turns any number of boxes
into masks cheaply, batched over the boxes. Boxes and masks live in the original image's pixel frame.

Backends are plain builder functions in :data:`SEGMENTERS`; :func:`create_segmenter` picks one by name.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from endoked.errors import ConfigError, DataFormatError


class BoxPromptSegmenter(abc.ABC):
    """A segmenter prompted with boxes.

    Subclasses implement :meth:`_embed` (per image) and :meth:`_predict` (per batch of boxes).
    """

    name: str = "base"
    #: Boxes per :meth:`_predict` call; ``None`` decodes all boxes of a :meth:`predict` call at once.
    decode_batch: int | None = None

    def __init__(self) -> None:
        self._image_size: tuple[int, int] | None = None

    @property
    def is_image_set(self) -> bool:
        """Whether :meth:`set_image` has been called since the last :meth:`reset_image`."""
        return self._image_size is not None

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` of the image set with :meth:`set_image`."""
        if self._image_size is None:
            raise RuntimeError("An image must be set with .set_image(...) before asking for its size.")
        return self._image_size

    def set_image(self, image: np.ndarray) -> None:
        """Compute and keep the embedding of ``image``.

        Args:
            image: ``(H, W, 3) uint8`` RGB.

        Raises:
            DataFormatError: the array is not an ``(H, W, 3)`` uint8 image.
        """
        image = check_image(image)
        self._embed(image)
        self._image_size = (int(image.shape[0]), int(image.shape[1]))

    def reset_image(self) -> None:
        """Forget the current image and its embedding."""
        self._image_size = None
        self._reset()

    def predict(self, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Masks for boxes on the image set with :meth:`set_image`.

        Args:
            boxes_xyxy: ``(N, 4) float`` boxes, pixels in the original image frame, ``x0, y0, x1, y1``.

        Returns:
            ``masks``: ``(N, H, W) bool`` in the original image frame; ``scores``: ``(N,) float32``, the
            backend's confidence in each mask (predicted IoU for SAM-family models). Boxes are decoded
            ``decode_batch`` at a time (all at once when it is ``None``); the result does not depend on it.

        Raises:
            RuntimeError: no image was set.
            DataFormatError: the boxes are not an ``(N, 4)`` array of finite numbers.
        """
        if self._image_size is None:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        boxes = check_boxes(boxes_xyxy, self._image_size)
        h, w = self._image_size
        if len(boxes) == 0:
            return np.zeros((0, h, w), dtype=bool), np.zeros((0,), dtype=np.float32)
        step = self.decode_batch or len(boxes)
        parts = [self._predict(boxes[i : i + step]) for i in range(0, len(boxes), step)]
        masks = parts[0][0] if len(parts) == 1 else np.concatenate([m for m, _ in parts])
        scores = parts[0][1] if len(parts) == 1 else np.concatenate([s for _, s in parts])
        return masks.astype(bool, copy=False), scores.astype(np.float32, copy=False)

    def predict_lowres(self, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mask logits for boxes at the backend's native (low) resolution, for ranking many candidates cheaply.

        Args:
            boxes_xyxy: ``(N, 4) float`` boxes in the original image frame, as for :meth:`predict`.

        Returns:
            ``logits``: ``(N, h, w) float32`` (``> 0`` is inside the mask) covering the whole image at the
            backend's own resolution; ``scores``: ``(N,) float32`` as from :meth:`predict`.
            :meth:`upsample_logits` turns them into exactly the masks :meth:`predict` returns. The default
            (backends without a low-resolution output) is the image-size masks as ``±1``.
        """
        masks, scores = self.predict(boxes_xyxy)
        return np.where(masks, np.float32(1.0), np.float32(-1.0)), scores

    def upsample_logits(self, logits: np.ndarray) -> np.ndarray:
        """``(N, H, W) bool`` masks in the image frame from :meth:`predict_lowres` logits."""
        h, w = self.image_size
        arr = np.asarray(logits, dtype=np.float32)
        if arr.shape[-2:] == (h, w):
            return arr > 0
        t = torch.from_numpy(np.ascontiguousarray(arr))[:, None]
        return (F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[:, 0] > 0).numpy()

    def _lowres_in_chunks(
        self,
        boxes_xyxy: np.ndarray,
        decode: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]],
        shape: Callable[[], tuple[int, int]],
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_lowres` for a backend with a low-resolution decoder: ``decode`` (checked boxes ->
        logits ``(n, h', w')``, scores ``(n,)``) over chunks of ``decode_batch`` boxes, the logits cropped to
        ``shape()`` (asked once the boxes are checked), as ``float32`` arrays."""
        chunks = self._check_and_split(boxes_xyxy)
        h, w = shape()
        if not chunks or len(chunks[0]) == 0:
            return np.zeros((0, h, w), np.float32), np.zeros((0,), np.float32)
        parts = [decode(b) for b in chunks]
        logits = torch.cat([lg for lg, _ in parts])[:, :h, :w]
        iou = torch.cat([s for _, s in parts])
        return logits.float().cpu().numpy(), iou.float().cpu().numpy()

    def _check_and_split(self, boxes_xyxy: np.ndarray) -> list[np.ndarray]:
        """Checked, clipped boxes in chunks of ``decode_batch``."""
        if self._image_size is None:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        boxes = check_boxes(boxes_xyxy, self._image_size)
        step = self.decode_batch or max(len(boxes), 1)
        return [boxes[i : i + step] for i in range(0, len(boxes), step)]

    @abc.abstractmethod
    def _embed(self, image: np.ndarray) -> None:
        """Compute the embedding of a checked ``(H, W, 3) uint8`` image."""

    @abc.abstractmethod
    def _predict(self, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Masks ``(N, H, W) bool`` and scores ``(N,)`` for checked, clipped ``(N, 4) float32`` boxes."""

    def _reset(self) -> None:  # noqa: B027 - optional hook
        """Drop backend state held for the current image."""


def resolve_decode_batch(decode_batch: int | None, device: torch.device) -> int | None:
    """Boxes per mask-decoder call: ``decode_batch`` when given (0 = all at once); by default one at a time on
    CPU and all at once elsewhere.

    SAM's mask decoder repeats the image embedding (256×64×64) for every box of a batch; on a CPU the memory
    traffic of a large batch costs more than the batching saves (LiteMedSAM, 24 boxes per image, two cores:
    2.06 s in one call, 1.16 s one at a time; ``benchmarks/bench_decode.py``), while an accelerator is fastest
    with one call.
    """
    if decode_batch is None:
        return 1 if device.type == "cpu" else None
    return decode_batch or None


def best_mask(masks: torch.Tensor, iou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per prompt, the mask with the highest predicted IoU: ``(N, C, ...)`` masks and ``(N, C)`` scores to
    ``(N, ...)`` and ``(N,)`` (a SAM-family decoder's ``C`` = 3 candidates with multimask output, else 1)."""
    best = iou.argmax(dim=1)
    idx = torch.arange(len(best), device=best.device)
    return masks[idx, best], iou[idx, best]


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an ``(H, W, 3) uint8`` RGB image (a grey ``(H, W)`` image is expanded to RGB)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataFormatError(f"image must be an (H, W, 3) RGB array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise DataFormatError(f"image must be uint8, got {arr.dtype}; convert with np.clip(x, 0, 255).astype(np.uint8)")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise DataFormatError(f"image is too small: {arr.shape[:2]}")
    return np.ascontiguousarray(arr)


def check_boxes(boxes_xyxy: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Validate ``(N, 4)`` xyxy boxes and clip them to the image; returns float32."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.ndim == 1 and boxes.shape[0] == 4:
        boxes = boxes[None]
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise DataFormatError(f"boxes_xyxy must have shape (N, 4), got {boxes.shape}")
    if not np.all(np.isfinite(boxes)):
        raise DataFormatError("boxes_xyxy holds non-finite values")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise DataFormatError("boxes_xyxy must be x0, y0, x1, y1 with x1 >= x0 and y1 >= y0")
    h, w = image_size
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes.astype(np.float32)


SegmenterBuilder = Callable[..., BoxPromptSegmenter]


def _build_litemedsam(**kwargs: Any) -> BoxPromptSegmenter:
    from endoked.prompt_seg.litemedsam import LiteMedSamSegmenter

    return LiteMedSamSegmenter(**kwargs)


def _build_sam(**kwargs: Any) -> BoxPromptSegmenter:
    from endoked.prompt_seg.sam import SamSegmenter

    return SamSegmenter(**kwargs)


def _build_medsam(**kwargs: Any) -> BoxPromptSegmenter:
    from endoked.prompt_seg.medsam import MedSamSegmenter

    return MedSamSegmenter(**kwargs)


def _build_sam2(**kwargs: Any) -> BoxPromptSegmenter:
    from endoked.prompt_seg.sam2 import Sam2Segmenter

    return Sam2Segmenter(**kwargs)


def _build_ellipse(**kwargs: Any) -> BoxPromptSegmenter:
    from endoked.prompt_seg.ellipse import EllipseSegmenter

    return EllipseSegmenter(**kwargs)


SEGMENTERS: dict[str, SegmenterBuilder] = {
    "litemedsam": _build_litemedsam,
    "sam": _build_sam,
    "medsam": _build_medsam,
    "sam2": _build_sam2,
    "ellipse": _build_ellipse,
}


def create_segmenter(name: str, **kwargs: Any) -> BoxPromptSegmenter:
    """Build a registered segmenter by name (``litemedsam``, ``sam``, ``medsam``, ``sam2``, ``ellipse``).

    Keyword arguments go to the backend's constructor; ``None`` values are dropped so that unset options
    keep the backend's defaults.
    """
    if name not in SEGMENTERS:
        raise ConfigError(f"unknown segmenter {name!r}; available: {', '.join(SEGMENTERS)}")
    return SEGMENTERS[name](**{k: v for k, v in kwargs.items() if v is not None})
