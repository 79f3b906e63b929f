"""The mask encodings of the labelling tools: Label Studio's brush RLE and CVAT's box RLE.

**Label Studio brush RLE** (the ``rle`` list of a ``brushlabels`` result; the ``rle-pack`` bit stream of
thi.ng/umbrella that Label Studio's front end and ``label_studio_converter.brush`` read and write). The
mask is an RGBA image ``(H, W, 4)`` flattened row by row; Label Studio reads the alpha channel. The stream,
most significant bit first, then padded with zero bits to whole bytes, is::

    32 bits  number of values (H * W * 4)
     5 bits  word size - 1 (8 here)
    4 x 4    the four run-length field widths - 1 (3, 4, 8, 16 here)
    then chunks: 1 bit  kind (1: one value repeated, 0: a literal sequence)
                 2 bits which field width, n bits  count - 1
                 kind 1: one word; kind 0: count words

**CVAT mask RLE** (the ``rle`` attribute of a ``<mask>`` in CVAT for images 1.1 XML): the mask cropped to the
box ``left, top, width, height`` (inclusive pixel box), read row by row, as alternating run lengths that
start with a run of background (0 when the first pixel is foreground), written ``"3, 5, 2"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from endoked.errors import DataFormatError

BRUSH_WORD = 8
BRUSH_RUN_WIDTHS: tuple[int, int, int, int] = (3, 4, 8, 16)


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start indices and lengths of the runs of equal values of a 1-D array."""
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [values.size]])
    return starts, ends - starts


def brush_encode(mask: np.ndarray) -> list[int]:
    """Label Studio brush RLE of a mask.

    Args:
        mask: ``(H, W)`` bool (or 0/1, 0/255) mask.

    Returns:
        The ``rle`` byte list: RGBA pixels 255 where the mask is set, 0 elsewhere.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got {mask.shape}")
    values = np.repeat(np.where(mask.astype(bool), 255, 0).astype(np.uint8).ravel(), 4)
    parts = [f"{values.size:032b}", f"{BRUSH_WORD - 1:05b}", "".join(f"{w - 1:04b}" for w in BRUSH_RUN_WIDTHS)]
    if values.size:
        starts, lengths = _runs(values)
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            word = f"{int(values[start]):08b}"
            while length > 0:
                chunk = min(length, 1 << BRUSH_RUN_WIDTHS[-1])
                index = next(i for i, w in enumerate(BRUSH_RUN_WIDTHS) if chunk <= 1 << w)
                width = BRUSH_RUN_WIDTHS[index]
                parts.append(f"1{index:02b}{chunk - 1:0{width}b}{word}")
                length -= chunk
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    packed = np.packbits(np.frombuffer(bits.encode("ascii"), dtype=np.uint8) - ord("0"))
    return [int(v) for v in packed]


class _Bits:
    """A most-significant-bit-first reader over bytes."""

    def __init__(self, data: np.ndarray, origin: str) -> None:
        self.bits = np.unpackbits(data)
        self.pos = 0
        self.origin = origin

    def read(self, n: int) -> int:
        if self.pos + n > self.bits.size:
            raise DataFormatError(f"{self.origin}: brush RLE ends in the middle of its data (truncated)")
        value = 0
        for bit in self.bits[self.pos : self.pos + n].tolist():
            value = (value << 1) | bit
        self.pos += n
        return value


def brush_decode(rle: Sequence[int], height: int, width: int, origin: str = "brush RLE") -> np.ndarray:
    """Mask of a Label Studio brush RLE (alpha > 0).

    Args:
        rle: the ``rle`` byte list.
        height, width: ``original_height`` / ``original_width`` of the result.
        origin: names the file and result in error messages.

    Returns:
        ``(height, width)`` bool.

    Raises:
        DataFormatError: not a byte list, truncated, or not ``height * width * 4`` values.
    """
    if not isinstance(rle, list | tuple) or not all(isinstance(v, int) and 0 <= v <= 255 for v in rle):
        raise DataFormatError(f"{origin}: rle must be a list of bytes (integers 0-255)")
    reader = _Bits(np.asarray(rle, dtype=np.uint8), origin)
    num = reader.read(32)
    if num != height * width * 4:
        raise DataFormatError(
            f"{origin}: brush RLE holds {num} values but the image is {width}x{height} (needs {height * width * 4})"
        )
    word = reader.read(5) + 1
    widths = [reader.read(4) + 1 for _ in range(4)]
    out = np.zeros(num, dtype=np.uint32)
    i = 0
    while i < num:
        repeated = reader.read(1)
        j = i + 1 + reader.read(widths[reader.read(2)])
        if j > num:
            raise DataFormatError(f"{origin}: brush RLE runs past its {num} values")
        if repeated:
            out[i:j] = reader.read(word)
        else:
            out[i:j] = [reader.read(word) for _ in range(j - i)]
        i = j
    return out.reshape(height, width, 4)[..., 3] > 0


def cvat_encode(mask: np.ndarray) -> tuple[list[int], tuple[int, int, int, int]] | None:
    """CVAT mask RLE of a mask over its tight box.

    Returns:
        ``(counts, (left, top, width, height))``, or None for an empty mask.
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    top, left = int(ys.min()), int(xs.min())
    height, width = int(ys.max()) - top + 1, int(xs.max()) - left + 1
    crop = mask[top : top + height, left : left + width].astype(bool).ravel()
    _starts, lengths = _runs(crop)
    counts = ([0] if crop[0] else []) + [int(n) for n in lengths]
    return counts, (left, top, width, height)


def cvat_decode(
    counts: Sequence[int], box: tuple[int, int, int, int], image_hw: tuple[int, int], origin: str = "mask"
) -> np.ndarray:
    """Full-image mask of a CVAT mask RLE.

    Args:
        counts: alternating run lengths, background first.
        box: ``(left, top, width, height)``.
        image_hw: the image's ``(H, W)``.
        origin: names the file and element in error messages.

    Raises:
        DataFormatError: negative runs, runs that do not fill the box, or a box outside the image.
    """
    left, top, width, height = box
    h, w = image_hw
    if width <= 0 or height <= 0 or left < 0 or top < 0 or left + width > w or top + height > h:
        raise DataFormatError(f"{origin}: mask box left={left} top={top} {width}x{height} is outside the {w}x{h} image")
    runs = np.asarray(list(counts), dtype=np.int64)
    if runs.size == 0 or (runs < 0).any():
        raise DataFormatError(f"{origin}: rle must be a list of non-negative run lengths")
    if int(runs.sum()) != width * height:
        raise DataFormatError(f"{origin}: rle covers {int(runs.sum())} pixels but its box has {width * height}")
    values = np.arange(runs.size) % 2 == 1
    crop = np.repeat(values, runs).reshape(height, width)
    out = np.zeros((h, w), dtype=bool)
    out[top : top + height, left : left + width] = crop
    return out
