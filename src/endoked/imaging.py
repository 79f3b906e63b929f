"""Image and mask I/O shared by every stage: decoding images to RGB arrays, reading binary masks, encoding and
writing PNGs, and resizing maps to an image's size.

Conventions:

* every read applies the file's EXIF orientation tag (:func:`upright`: the transposes of Pillow's
  ``ImageOps.exif_transpose``), so a rotated phone or endoscope capture is seen upright; ingest records the
  upright size (:func:`upright_size`): ``width``/``height`` in ``images.parquet`` are those readers return;
* images are ``(H, W, 3) uint8`` RGB (Pillow ``convert("RGB")``), or ``(3, S, S) uint8`` when decoded at a
  model's input size (:func:`load_image`); boxes are in the upright frame;
* a mask file is a grey PNG, 0/255 as the stages write it; a pixel is foreground when its grey value
  (Pillow ``convert("L")``) is greater than :data:`MASK_THRESHOLD`. Masks are read by the same rule: a mask
  without an EXIF orientation tag (every PNG endoked writes, and most mask files) is read as stored; a mask
  carrying a tag is turned upright like an image with the same tag, so it stays aligned with its image;
* an unreadable file raises :class:`~endoked.errors.DataFormatError` naming the file, except in
  :func:`load_image`, whose callers record the decoder's own error per image.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from endoked.errors import DataFormatError
from endoked.io import atomic_write_bytes

MASK_THRESHOLD = 127
"""A mask pixel is foreground when its 8-bit grey value is greater than this."""

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` pixels, as :meth:`PIL.Image.Image.crop` takes them."""


ORIENTATION = 0x0112
"""The EXIF orientation tag: 1 is upright; 2-8 flip and/or rotate (5-8 swap width and height)."""


def orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when it has none or an invalid one."""
    try:
        value = im.getexif().get(ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError):  # damaged EXIF block: treat as upright
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""Orientation -> the transpose that makes it upright (as ``ImageOps.exif_transpose`` does)."""


def upright(im: Image.Image, orient: int | None = None) -> Image.Image:
    """``im`` turned as its EXIF orientation says (``orient``: the orientation read from the file, for an image
    converted since, which has lost its EXIF block); the same image when it is upright already."""
    turn = _TURNS.get(orientation(im) if orient is None else orient)
    return im if turn is None else im.transpose(turn)


def upright_size(im: Image.Image) -> tuple[int, int]:
    """``(width, height)`` of an opened image once turned upright, read from the header (no decoding)."""
    width, height = im.size
    return (height, width) if orientation(im) in (5, 6, 7, 8) else (width, height)


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """A fully decoded, upright copy of an image file, in the file's own mode (the file is closed on return).

    Raises:
        DataFormatError: the file cannot be decoded (the message names it).
    """
    try:
        with Image.open(path) as im:
            im.load()
            turned = upright(im)
            return turned.copy() if turned is im else turned
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataFormatError(f"cannot read image {path}: {exc}; replace or remove the file") from exc


def copy_upright(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Copy an image file to ``dest`` (atomically) so that a reader that ignores EXIF sees it as endoked does:
    an upright file (no orientation tag, or 1) is copied byte for byte; a turned one is re-encoded upright in
    its own format (JPEG at quality 95, keeping the rest of its EXIF with the orientation reset to 1).

    Raises:
        DataFormatError: the file cannot be decoded (the message names it).
    """
    try:
        with Image.open(src) as im:
            orient, fmt = orientation(im), im.format or "PNG"
            if orient == 1:
                data = Path(src).read_bytes()
            else:
                im.load()
                exif = im.getexif()
                exif[ORIENTATION] = 1
                turned = upright(im, orient)
                buf = io.BytesIO()
                extra = {"quality": 95} if fmt == "JPEG" else {}
                turned.save(buf, format=fmt, exif=exif.tobytes(), **extra)
                data = buf.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataFormatError(f"cannot read image {src}: {exc}; replace or remove the file") from exc
    atomic_write_bytes(Path(dest), data)


def to_8bit(im: Image.Image) -> Image.Image:
    """An image of 16-bit integer or float samples scaled to 8 bits (Pillow's ``convert`` would clip them to
    near-white or near-black): 16-bit by its type's range (>> 8); 32-bit integers and floats by their range,
    floats within [0, 1] as fractions of white. 8-bit images are returned unchanged."""
    if im.mode not in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return im
    a = np.asarray(im)
    if im.mode.startswith("I;16"):
        out = (a.astype(np.uint32) >> 8).astype(np.uint8)
    else:
        f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(f.min()), float(f.max())
        if im.mode == "F" and lo >= 0.0 and hi <= 1.0:
            lo, hi = 0.0, 1.0
        out = np.round((f - lo) / (hi - lo) * 255.0).astype(np.uint8) if hi > lo else np.zeros(a.shape, np.uint8)
    return Image.fromarray(out, mode="L")


def _read_as(path: str | os.PathLike[str], mode: str, what: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(upright(to_8bit(im).convert(mode), orientation(im)))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataFormatError(f"cannot read {what} {path}: {exc}") from exc


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """``(H, W, 3) uint8`` RGB pixels of an image file.

    Raises:
        DataFormatError: the file cannot be decoded (the message names it).
    """
    return _read_as(path, "RGB", "image")


def load_image(path: str | os.PathLike[str], size: int, box: Box | None = None) -> np.ndarray:
    """Decode an image, crop it to ``box`` and resize it (bilinear) to ``size x size``.

    Without a box a JPEG is decoded at a reduced scale when it is much larger than needed (``draft``).

    Args:
        box: ``(x0, y0, x1, y1)`` pixels in the original frame, or None for the whole image.

    Returns:
        ``(3, size, size)`` uint8 RGB.

    Raises:
        OSError / ValueError: unreadable image (callers record it per image).
    """
    with Image.open(path) as im:
        if box is None:
            im.draft("RGB", (size, size))
        rgb = upright(to_8bit(im).convert("RGB"), orientation(im))
        if box is not None:
            rgb = rgb.crop(box)
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1))


def read_grey(path: str | os.PathLike[str]) -> np.ndarray:
    """``(H, W) uint8`` grey values (Pillow ``convert("L")``) of a mask file.

    Raises:
        DataFormatError: the file cannot be decoded (the message names it).
    """
    return _read_as(path, "L", "mask")


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """``(H, W) bool`` mask of a file: grey value > :data:`MASK_THRESHOLD`.

    Raises:
        DataFormatError: the file cannot be decoded (the message names it).
    """
    return read_grey(path) > MASK_THRESHOLD


def read_mask_u8(path: str | os.PathLike[str]) -> np.ndarray:
    """``(H, W) uint8`` mask with foreground 255 from a 0/255 mask (grey > :data:`MASK_THRESHOLD`) or a 0/1
    mask (a file whose largest value is at most 1: grey > 0).

    Raises:
        DataFormatError: the file cannot be decoded (the message names it).
    """
    arr = read_grey(path)
    thr = 0 if arr.max(initial=0) <= 1 else MASK_THRESHOLD
    return np.where(arr > thr, 255, 0).astype(np.uint8)


def mask_to_u8(mask: np.ndarray) -> np.ndarray:
    """``(H, W) bool`` (or 0/1) mask -> ``(H, W) uint8`` 0/255, as mask files store it."""
    return mask.astype(np.uint8) * 255


def encode_png(
    image: np.ndarray | Image.Image, optimize: bool = False, library: Literal["pillow", "opencv"] = "pillow"
) -> bytes:
    """PNG bytes of an ``(H, W)`` grey or ``(H, W, 3)`` RGB ``uint8`` array (or a PIL image).

    Args:
        optimize: Pillow's extra compression pass (smaller file, same pixels).
        library: the encoder. Both give the same pixels but not the same bytes; a writer keeps the one it
            has always used, so that the files (and their hashes) stay the same.

    Raises:
        RuntimeError: OpenCV could not encode the array.
    """
    if library == "opencv":
        arr = np.asarray(image)
        ok, buf = cv2.imencode(".png", cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr)
        if not ok:
            raise RuntimeError("OpenCV failed to encode a PNG")
        return buf.tobytes()
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    out = io.BytesIO()
    pil.save(out, format="PNG", optimize=optimize)
    return out.getvalue()


def write_png(path: str | os.PathLike[str], image: np.ndarray | Image.Image, optimize: bool = False) -> Path:
    """Write :func:`encode_png` (Pillow) of ``image`` to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, encode_png(image, optimize=optimize))


def resize_map(values: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a ``(h, w)`` map (a CAM, a heat map) to ``(H, W)`` float32.

    The map is stretched to the new size (the classifier input is a stretched square), not letterboxed.
    """
    return cv2.resize(np.asarray(values, dtype=np.float32), (size_hw[1], size_hw[0]), interpolation=cv2.INTER_LINEAR)
