"""Tiny synthetic segmentation data: bright textured disks on a dark noisy background, written as PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from endoked.seg.config import SegConfig


def disk_pair(size: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W, 3) uint8`` image and ``(H, W) uint8`` 0/255 mask of one disk (size = (H, W))."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    r = rng.uniform(0.15, 0.25) * min(h, w)
    mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
    img = rng.normal(60, 12, (h, w, 3))
    img[mask] = rng.normal(190, 12, (int(mask.sum()), 3))
    img[..., 1] *= 0.8
    return np.clip(img, 0, 255).astype(np.uint8), (mask * 255).astype(np.uint8)


def write_pranet(root: Path, n: int, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """A PraNet-layout folder ``root/images/*.png``, ``root/masks/*.png`` of ``n`` disk pairs."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, mask = disk_pair(size, seed + i)
        Image.fromarray(img).save(root / "images" / f"s{i:02d}.png")
        Image.fromarray(mask).save(root / "masks" / f"s{i:02d}.png")
    return root


def tiny_config(**changes: object) -> SegConfig:
    """Small, fast settings: tiny random-init encoder, 64 px, no augmentation.

    ``changes`` use the config's section paths with ``__`` for the dot: ``optim__epochs=3``,
    ``refine__boxes__max_area=0.9``, ``val_fraction=0.0``."""
    base: dict[str, Any] = {
        "image_size": 64,
        "val_fraction": 0.25,
        "model": {"backbone": "test_efficientnet", "pretrained": False, "channel": 8},
        "augment": {
            "scales": [1.0],
            "hflip": 0.0,
            "vflip": 0.0,
            "rotate90": 0.0,
            "crop_scale": 1.0,
            "color_jitter": 0.0,
        },
        "optim": {"epochs": 2, "batch_size": 4, "lr": 3e-3, "warmup_epochs": 0.0, "grad_clip": None},
        "predict": {"batch_size": 4},
    }
    for key, value in changes.items():
        node = base
        *parents, leaf = key.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return SegConfig.model_validate(base)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def disks(tmp_path: Path) -> Path:
    return write_pranet(tmp_path / "disks", 8)
