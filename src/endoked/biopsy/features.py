"""Decoding, cropping and flipping images, and caching the frozen encoder part's outputs.

The encoder is split as in :class:`endoked.backbones.split.SplitEncoder`: the frozen prefix runs once per image
and view, the trainable suffix (nothing, the last block stages, or everything) runs in every step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from endoked.biopsy.data import LabelledImage
from endoked.imaging import load_image
from endoked.io import atomic_path
from endoked.progress import bar

logger = logging.getLogger(__name__)

VIEWS: tuple[str, ...] = ("orig", "hflip", "vflip")


def make_views(images: torch.Tensor, n_views: int) -> torch.Tensor:
    """``images: (B, 3, S, S)`` -> ``(B * n_views, 3, S, S)``, views in :data:`VIEWS` order per image."""
    views = [images, images.flip(-1), images.flip(-2)][:n_views]
    return torch.stack(views, dim=1).flatten(0, 1)


@dataclass
class Features:
    """Cached encoder-prefix outputs of a list of images.

    Attributes:
        data: ``(N, V, ...)``: V views per image (pooled features ``(F,)``, feature maps or images per view).
            Rows of unreadable images are zeros.
        ok: ``(N,)`` bool, False for images that could not be decoded.
        failed: row index -> error message.
    """

    data: torch.Tensor
    ok: np.ndarray
    failed: dict[int, str]

    def select(self, idx: np.ndarray | Sequence[int]) -> Features:
        """Rows ``idx`` (views kept)."""
        ix = np.asarray(idx, dtype=np.int64)
        pos = {int(j): k for k, j in enumerate(ix)}
        return Features(self.data[torch.as_tensor(ix)], self.ok[ix],
                        {pos[i]: m for i, m in self.failed.items() if i in pos})


def encode_items(items: Sequence[LabelledImage], prefix: Callable[[torch.Tensor], torch.Tensor], size: int,
                 n_views: int, device: torch.device, batch_size: int = 32, workers: int = 2,
                 store_dtype: torch.dtype | None = None, cache_file: Path | None = None, signature: str = "",
                 progress: bool | None = None, desc: str = "biopsy encode") -> Features:
    """Run the frozen encoder part over every image (and its flipped views) once.

    Args:
        items: images (path and optional crop box).
        prefix: frozen encoder part, ``(B, 3, size, size)`` uint8 on ``device`` -> ``(B, ...)``.
        n_views: 1 (original) to 3 (plus horizontal and vertical flips).
        store_dtype: dtype of stored floating outputs (None keeps the output's).
        cache_file: reuse/save the result here; reused only when keys, views and ``signature`` match.
        signature: what else determines the outputs (encoder weights, size, split).

    Returns:
        :class:`Features` in the order of ``items``.
    """
    keys = [it.key for it in items]
    if cache_file is not None and Path(cache_file).is_file():
        saved = torch.load(cache_file, map_location="cpu", weights_only=True)
        if saved.get("keys") == keys and saved.get("signature") == signature and saved.get("views") == n_views:
            logger.info("%s: %d images from cache %s", desc, len(keys), cache_file)
            return Features(saved["data"], np.asarray(saved["ok"], dtype=bool),
                            {int(k): str(v) for k, v in zip(saved["failed_rows"], saved["failed_msgs"], strict=True)})

    def _load(i: int) -> tuple[int, np.ndarray | None, str]:
        it = items[i]
        try:
            return i, load_image(it.path, size, it.box), ""
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            return i, None, f"{it.path}: {type(exc).__name__}: {exc}"

    outs: list[torch.Tensor | None] = [None] * len(items)
    failed: dict[int, str] = {}
    with bar(len(items), desc=desc, unit="img", enabled=progress) as pbar, \
            ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(items), batch_size):
            loaded = list(pool.map(_load, range(start, min(len(items), start + batch_size))))
            good = [(i, a) for i, a, _ in loaded if a is not None]
            failed.update({i: msg for i, a, msg in loaded if a is None})
            if good:
                batch = torch.from_numpy(np.stack([a for _, a in good])).to(device)
                with torch.inference_mode():
                    out = prefix(make_views(batch, n_views)).cpu()
                if store_dtype is not None and out.is_floating_point():
                    out = out.to(store_dtype)
                out = out.view(len(good), n_views, *out.shape[1:]).clone()
                for k, (i, _) in enumerate(good):
                    outs[i] = out[k]
            pbar.update(len(loaded))
    template = next((o for o in outs if o is not None), None)
    if template is None:
        data = torch.empty(0)
    else:
        data = torch.stack([o if o is not None else torch.zeros_like(template) for o in outs])
    ok = np.array([o is not None for o in outs], dtype=bool)
    if failed:
        logger.warning("%s: %d image(s) could not be decoded (first: %s)", desc, len(failed),
                       next(iter(failed.values())))
    if cache_file is not None:
        with atomic_path(cache_file) as tmp:
            torch.save({"keys": keys, "signature": signature, "views": n_views, "data": data, "ok": ok.tolist(),
                        "failed_rows": list(failed), "failed_msgs": list(failed.values())}, tmp)
    return Features(data, ok, failed)
