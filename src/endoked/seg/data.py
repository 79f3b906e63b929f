"""Training pools (folders of images + masks, pseudo-label tables), loading, splitting and augmentation.

Images are decoded once, resized to the training size and kept as ``uint8`` arrays (``preload``); masks are
resized bilinearly and kept as soft 0-255 targets, as Polyp-PVT does. Augmentations run on whole batches of
tensors, seeded by a :class:`torch.Generator`, so that a resumed run draws the same numbers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from endoked.errors import DataFormatError
from endoked.imaging import read_mask_u8, read_rgb

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class SegItem:
    """One training image and its (pseudo) mask.

    Attributes:
        key: unique identifier (file stem for folders, ``exam_id/image`` for pseudo labels).
        image: image file.
        mask: mask file (0/255 or 0/1 grey PNG, same size as the image); None for a polyp-free image,
            whose target is an empty mask.
    """

    key: str
    image: Path
    mask: Path | None


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by suffix), sorted by name."""
    if not folder.is_dir():
        raise DataFormatError(f"image folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_pranet_folder(root: Path) -> tuple[list[SegItem], list[dict[str, str]]]:
    """Pairs of ``root/images/<stem>.*`` and ``root/masks/<stem>.*``, sorted by stem.

    Returns:
        The items and one error record (``key``, ``image``, ``reason``) per image without a mask.

    Raises:
        DataFormatError: ``images/`` or ``masks/`` is missing, or no pair is found.
    """
    images, masks = root / "images", root / "masks"
    for folder in (images, masks):
        if not folder.is_dir():
            raise DataFormatError(
                f"{root} is not a PraNet-layout folder: {folder} is missing (expected "
                "images/ and masks/ with files matched by stem)"
            )
    by_stem = {p.stem: p for p in list_image_files(masks)}
    items: list[SegItem] = []
    errors: list[dict[str, str]] = []
    for img in list_image_files(images):
        if img.stem in by_stem:
            items.append(SegItem(img.stem, img, by_stem[img.stem]))
        else:
            errors.append({"key": img.stem, "image": str(img), "reason": "no mask with this stem in masks/"})
    if not items:
        raise DataFormatError(f"no image in {images} has a mask of the same stem in {masks}")
    return items, errors


def load_pair(item: SegItem, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image ``(size, size, 3) uint8`` and soft mask ``(size, size) uint8`` (bilinear), both resized.

    Raises:
        DataFormatError: unreadable file, or image and mask of different sizes.
    """
    img = read_rgb(item.image)
    mask = read_mask_u8(item.mask) if item.mask is not None else np.zeros(img.shape[:2], np.uint8)
    if img.shape[:2] != mask.shape:
        raise DataFormatError(
            f"{item.key}: image {item.image} is {img.shape[1]}x{img.shape[0]} but mask "
            f"{item.mask} is {mask.shape[1]}x{mask.shape[0]}; masks must have the image's size"
        )
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
    return img, mask


class PairStore:
    """Resized (image, mask) pairs of a pool, decoded on demand or all at once.

    Args:
        items: the pool.
        size: square training size.
        preload: decode everything in :meth:`preload_all` and keep it.
        workers: decoding threads.
    """

    def __init__(self, items: Sequence[SegItem], size: int, preload: bool = True, workers: int = 0) -> None:
        self.items = list(items)
        self.size = size
        self.keep = preload
        self.workers = workers
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i in self._cache:
            return self._cache[i]
        pair = load_pair(self.items[i], self.size)
        if self.keep:
            self._cache[i] = pair
        return pair

    def check_all(self) -> list[dict[str, str]]:
        """Decode every pair once (kept when preloading); returns error records of unusable items and
        drops them from the pool."""
        errors: list[dict[str, str]] = []
        good: list[SegItem] = []
        kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def task(i: int) -> tuple[int, tuple[np.ndarray, np.ndarray] | None, str]:
            try:
                return i, load_pair(self.items[i], self.size), ""
            except DataFormatError as exc:
                return i, None, str(exc)

        with ThreadPoolExecutor(max(1, self.workers)) as pool:
            for i, pair, err in pool.map(task, range(len(self.items))):
                if pair is None:
                    errors.append({"key": self.items[i].key, "image": str(self.items[i].image), "reason": err})
                    continue
                if self.keep:
                    kept[len(good)] = pair
                good.append(self.items[i])
        for e in errors:
            logger.warning("skipping training image %s: %s", e["key"], e["reason"])
        self.items = good
        self._cache = kept
        return errors

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(B, 3, S, S) uint8`` and masks ``(B, 1, S, S) uint8`` of the given pool indices."""
        pairs = [self._load(i) for i in indices]
        imgs = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2).contiguous()
        masks = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
        return imgs, masks


def split_indices(n: int, val_fraction: float, val_max: int, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of ``range(n)`` into (train, val); val gets ``round(n * fraction)`` capped at ``val_max``,
    and at least one image stays for training."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n).tolist()
    n_val = min(val_max, round(n * val_fraction), max(0, n - 1))
    return sorted(order[n_val:]), sorted(order[:n_val])


def augment(
    images: torch.Tensor,
    masks: torch.Tensor,
    gen: torch.Generator,
    *,
    hflip: float,
    vflip: float,
    rotate90: float,
    crop_scale: float,
    color_jitter: float,
    zoom_out: float = 0.0,
    zoom_min: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips, right-angle rotations, crops (resized back) or zoom-outs, and colour jitter, per sample.

    Args:
        images: ``(B, 3, S, S)`` float in [0, 1].
        masks: ``(B, 1, S, S)`` float in [0, 1].
        gen: CPU generator every random draw comes from.
        zoom_out: probability that a sample is shrunk instead of cropped: resized to a side of
            ``S * f`` (``f`` uniform in ``[zoom_min, 1]``) and placed at a random position on a black canvas
            (endoscopy frames have black margins), the mask alike; objects then appear smaller than in
            the training frame. 0 draws nothing extra, so the other draws are those without it.

    Returns:
        Augmented copies, same shapes.
    """
    b, _, s, _ = images.shape
    out_i, out_m = [], []
    u = torch.rand(b, 8, generator=gen)
    k_rot = torch.randint(1, 4, (b,), generator=gen)
    z = torch.rand(b, 4, generator=gen) if zoom_out > 0 else None
    for j in range(b):
        img, msk = images[j], masks[j]
        if u[j, 0] < hflip:
            img, msk = img.flip(-1), msk.flip(-1)
        if u[j, 1] < vflip:
            img, msk = img.flip(-2), msk.flip(-2)
        if u[j, 2] < rotate90:
            k = int(k_rot[j])
            img, msk = torch.rot90(img, k, (-2, -1)), torch.rot90(msk, k, (-2, -1))
        if z is not None and float(z[j, 0]) < zoom_out:
            side = max(1, round(s * (zoom_min + (1.0 - zoom_min) * float(z[j, 1]))))
            if side < s:
                y0, x0 = int(float(z[j, 2]) * (s - side)), int(float(z[j, 3]) * (s - side))
                small_i = F.interpolate(
                    img[None], size=(side, side), mode="bilinear", align_corners=False, antialias=True
                )[0]
                small_m = F.interpolate(
                    msk[None], size=(side, side), mode="bilinear", align_corners=False, antialias=True
                )[0]
                img, msk = img.new_zeros(img.shape), msk.new_zeros(msk.shape)
                img[:, y0 : y0 + side, x0 : x0 + side] = small_i
                msk[:, y0 : y0 + side, x0 : x0 + side] = small_m
        elif crop_scale < 1.0:
            side = round(s * (crop_scale + (1.0 - crop_scale) * float(u[j, 3])))
            if side < s:
                y0 = int(float(u[j, 4]) * (s - side))
                x0 = int(float(u[j, 5]) * (s - side))
                img = F.interpolate(
                    img[None, :, y0 : y0 + side, x0 : x0 + side], size=(s, s), mode="bilinear", align_corners=False
                )[0]
                msk = F.interpolate(
                    msk[None, :, y0 : y0 + side, x0 : x0 + side], size=(s, s), mode="bilinear", align_corners=False
                )[0]
        if color_jitter > 0:
            bright = 1.0 + color_jitter * (2 * float(u[j, 6]) - 1)
            contrast = 1.0 + color_jitter * (2 * float(u[j, 7]) - 1)
            mean = img.mean()
            img = ((img - mean) * contrast + mean) * bright
            img = img.clamp(0.0, 1.0)
        out_i.append(img)
        out_m.append(msk)
    return torch.stack(out_i), torch.stack(out_m)


def scaled_size(size: int, scale: float) -> int:
    """``size * scale`` rounded to a multiple of 32 (at least 32)."""
    return max(32, math.floor(size * scale / 32.0 + 0.5) * 32)
