"""Input handling: reading maps and masks, and turning them into what the metrics score.

* Masks: RGB(A) masks are converted to grey (as MATLAB ``rgb2gray``), palette masks through their palette,
  1-bit masks are used as they are; a pixel is foreground when its 8-bit value is ``> gt_threshold`` (128).
  16-bit masks are compared on the 8-bit scale.
* Maps: the first channel of an RGB(A) map (the toolbox reads ``resmap(:,:,1)``); 8-bit maps are divided by
  255, 16-bit maps by 65535 (``im2double``). Float maps (library API) must lie in [0, 1] and are rounded to
  8 bit unless ``quantize=False``. A map whose size differs from its mask is resized to the mask's size with
  bicubic interpolation (Pillow, antialiased like MATLAB ``imresize``) and a warning is logged. Then the map
  is min-max normalised (:func:`endoked.eval.metrics.mapminmax`) unless ``normalize=False``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from endoked.errors import DataFormatError
from endoked.eval.config import EvalConfig
from endoked.eval.metrics import mapminmax
from endoked.imaging import open_image

logger = logging.getLogger(__name__)


def read_map(path: str | Path) -> np.ndarray:
    """Read a prediction map file.

    Returns:
        (H, W) uint8 or uint16 array (first channel of a colour image), or float32 for a float TIFF.

    Raises:
        DataFormatError: the file cannot be decoded (the message names it).
    """
    path = Path(path)
    im = open_image(path)
    if im.mode == "P":
        im = im.convert("RGB")
    arr = np.asarray(im)
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype in (np.int32, np.uint32) and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        return arr.astype(np.uint16)
    if arr.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise DataFormatError(
            f"{path}: unsupported pixel type {arr.dtype} (mode {im.mode}); save the map as an 8-bit grey PNG"
        )
    return np.ascontiguousarray(arr)


def read_mask(path: str | Path, gt_threshold: int = 128) -> np.ndarray:
    """Read a ground-truth mask file and binarise it (foreground = 8-bit value > ``gt_threshold``).

    Returns:
        (H, W) bool.

    Raises:
        DataFormatError: the file cannot be decoded (the message names it).
    """
    path = Path(path)
    im = open_image(path)
    if im.mode == "1":
        return np.asarray(im, dtype=bool)
    if im.mode in ("P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LA"):
        im = im.convert("L")
    arr = np.asarray(im)
    try:
        return binarize_mask(arr, gt_threshold)
    except DataFormatError as exc:
        raise DataFormatError(f"{path}: {exc}") from exc


def binarize_mask(gt: np.ndarray, gt_threshold: int = 128) -> np.ndarray:
    """Binarise a mask array: bool kept; integers compared on the 8-bit scale; floats in [0, 1] scaled by 255.

    Args:
        gt: (H, W) bool, uint8, uint16 (or int32 with 16-bit values), or float in [0, 1].
        gt_threshold: foreground when the 8-bit value is greater than this.

    Returns:
        (H, W) bool.
    """
    if gt.ndim != 2:
        raise DataFormatError(f"a mask must be a 2-D array, got shape {gt.shape}")
    if gt.dtype == bool:
        return gt
    if gt.dtype == np.uint8:
        return gt > gt_threshold
    if np.issubdtype(gt.dtype, np.integer):
        return gt.astype(np.float64) / 257.0 > gt_threshold
    if np.issubdtype(gt.dtype, np.floating):
        if not np.all(np.isfinite(gt)) or gt.min() < 0 or gt.max() > 1:
            raise DataFormatError("a float mask must lie in [0, 1]")
        return gt * 255.0 > gt_threshold
    raise DataFormatError(f"unsupported mask type {gt.dtype}")


def _resize(pred: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    if pred.dtype == np.uint8:
        return np.asarray(Image.fromarray(pred).resize((w, h), Image.Resampling.BICUBIC))
    top = 65535.0 if pred.dtype == np.uint16 else 1.0
    out = np.asarray(
        Image.fromarray(pred.astype(np.float32)).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64
    )
    out = np.clip(out, 0.0, top)
    return np.rint(out).astype(np.uint16) if pred.dtype == np.uint16 else out


def to_unit_map(pred: np.ndarray, normalize: bool = True, quantize: bool = True) -> np.ndarray:
    """Convert a map to float64 in [0, 1] (``im2double``), then min-max normalise it.

    Args:
        pred: (H, W) bool, uint8 (0-255), uint16 (0-65535) or float in [0, 1].
        normalize: apply :func:`mapminmax`.
        quantize: round float maps to 8 bit first.

    Returns:
        (H, W) float64 in [0, 1].

    Raises:
        DataFormatError: wrong rank, type, or float values outside [0, 1] / not finite.
    """
    if pred.ndim != 2:
        raise DataFormatError(f"a prediction map must be a 2-D array, got shape {pred.shape}")
    if pred.dtype == bool:
        out = pred.astype(np.float64)
    elif pred.dtype == np.uint8:
        out = pred / 255.0
    elif pred.dtype == np.uint16:
        out = pred / 65535.0
    elif np.issubdtype(pred.dtype, np.floating):
        out = np.asarray(pred, dtype=np.float64)
        if out.size and (not np.all(np.isfinite(out)) or out.min() < 0.0 or out.max() > 1.0):
            raise DataFormatError(
                f"a float prediction map must lie in [0, 1] (got {np.nanmin(out):.4g}.."
                f"{np.nanmax(out):.4g}); apply a sigmoid/softmax first"
            )
        if quantize:
            out = np.rint(out * 255.0) / 255.0
    else:
        raise DataFormatError(f"unsupported prediction type {pred.dtype}; use uint8, uint16, bool or float")
    return mapminmax(out) if normalize else out


def prepare_pair(
    pred: np.ndarray, gt: np.ndarray, config: EvalConfig, name: str = ""
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Bring a (map, mask) pair into scoring form.

    Args:
        pred: (H', W') map, see :func:`to_unit_map` for the types.
        gt: (H, W) mask, see :func:`binarize_mask`.
        config: eval settings.
        name: what to call the pair in messages (file or stem).

    Returns:
        (pred (H, W) float64 in [0, 1], gt (H, W) bool, resized flag).

    Raises:
        DataFormatError: bad types, or a size mismatch with ``on_size_mismatch="error"``.
    """
    gt_b = binarize_mask(np.asarray(gt), config.gt_threshold)
    pred = np.asarray(pred)
    if pred.ndim == 3 and pred.shape[-1] in (3, 4):
        pred = pred[..., 0]
    resized = False
    if pred.shape != gt_b.shape:
        where = f" for {name}" if name else ""
        if config.on_size_mismatch == "error" or pred.ndim != 2:
            raise DataFormatError(
                f"prediction{where} is {pred.shape[:2]} but the mask is {gt_b.shape}; "
                "write maps at the mask's size or allow on_size_mismatch='resize'"
            )
        logger.warning(
            "prediction%s is %dx%d but the mask is %dx%d: resized (bicubic) to the mask's size",
            where,
            pred.shape[1],
            pred.shape[0],
            gt_b.shape[1],
            gt_b.shape[0],
        )
        if pred.dtype == bool:
            pred = pred.astype(np.uint8) * 255
        elif np.issubdtype(pred.dtype, np.floating) and config.quantize:
            pred = to_unit_map(pred, normalize=False, quantize=True)
            pred = np.rint(pred * 255.0).astype(np.uint8)
        pred = _resize(pred, gt_b.shape)
        resized = True
    return to_unit_map(pred, config.normalize, config.quantize), gt_b, resized
