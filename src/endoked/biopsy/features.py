"""Decoding, cropping and flipping images, and caching the frozen encoder part's outputs.

The encoder is split as in :class:`endoked.backbones.split.SplitEncoder`: the frozen prefix runs once per image
and view, the trainable suffix (nothing, the last block stages, or everything) runs in every step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from endoked.biopsy.data import LabelledImage
from endoked.features import encode_batches, progress_bar, read_cache, write_cache
from endoked.imaging import load_image

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
        return Features(
            self.data[torch.as_tensor(ix)], self.ok[ix], {pos[i]: m for i, m in self.failed.items() if i in pos}
        )


def encode_items(
    items: Sequence[LabelledImage],
    prefix: Callable[[torch.Tensor], torch.Tensor],
    size: int,
    n_views: int,
    device: torch.device,
    batch_size: int = 32,
    workers: int = 2,
    store_dtype: torch.dtype | None = None,
    cache_file: Path | None = None,
    signature: str = "",
    progress: bool | None = None,
    desc: str = "biopsy encode",
) -> Features:
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
    saved = read_cache(cache_file, keys=keys, signature=signature, views=n_views)
    if saved is not None:
        logger.info("%s: %d images from cache %s", desc, len(keys), cache_file)
        return Features(
            saved["data"],
            np.asarray(saved["ok"], dtype=bool),
            {int(k): str(v) for k, v in zip(saved["failed_rows"], saved["failed_msgs"], strict=True)},
        )

    outs: list[torch.Tensor | None] = [None] * len(items)
    failed: dict[int, str] = {}
    with progress_bar(len(items), desc, progress) as pbar:
        for batch in encode_batches(
            len(items),
            lambda i: load_image(items[i].path, size, items[i].box),
            lambda i: str(items[i].path),
            lambda x: prefix(make_views(x, n_views)),
            device,
            batch_size=batch_size,
            workers=workers,
            store_dtype=store_dtype,
            pbar=pbar,
        ):
            failed.update(batch.failed)
            if batch.data is not None:
                out = batch.data.view(len(batch.index), n_views, *batch.data.shape[1:])
                for k, i in enumerate(batch.index):
                    outs[i] = out[k]
    template = next((o for o in outs if o is not None), None)
    if template is None:
        data = torch.empty(0)
    else:
        data = torch.stack([o if o is not None else torch.zeros_like(template) for o in outs])
    ok = np.array([o is not None for o in outs], dtype=bool)
    if failed:
        logger.warning(
            "%s: %d image(s) could not be decoded (first: %s)", desc, len(failed), next(iter(failed.values()))
        )
    if cache_file is not None:
        write_cache(
            cache_file,
            {
                "keys": keys,
                "signature": signature,
                "views": n_views,
                "data": data,
                "ok": ok.tolist(),
                "failed_rows": list(failed),
                "failed_msgs": list(failed.values()),
            },
        )
    return Features(data, ok, failed)
