"""Frozen-encoder feature caching, shared by every stage that trains on top of a frozen encoder part.

A frozen encoder part gives the same output for an image in every epoch, so stages compute it once:
:func:`frozen_forward` runs one batch without autograd and keeps the result on the CPU, :func:`encode_batches`
decodes a list of images in batches (in threads, unreadable images recorded, not raised) and runs the frozen part
over them with a progress bar, and :func:`read_cache` / :func:`write_cache` keep a result on disk, reused only
when what determines it (keys, encoder signature, views) matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from endoked.io import atomic_path
from endoked.progress import bar

Forward = Callable[[torch.Tensor], Any]

# what a decoder may raise for an unreadable or hostile image; recorded per image, never fatal
DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, Image.DecompressionBombError)


def _to_store(out: torch.Tensor, store_dtype: torch.dtype | None) -> torch.Tensor:
    out = out.cpu()
    if store_dtype is not None and out.is_floating_point():
        out = out.to(store_dtype)
    return out.clone()  # an ordinary tensor (not an inference-mode one), owning its own storage


def frozen_forward(forward: Forward, batch: torch.Tensor, store_dtype: torch.dtype | None = None) -> Any:
    """``forward(batch)`` without autograd, moved to the CPU (as ``store_dtype`` for floating outputs).

    ``forward`` may return a tensor or a list/tuple of tensors (one per encoder level); the result has the
    same structure.
    """
    with torch.inference_mode():
        out = forward(batch)
    if isinstance(out, (list, tuple)):
        return [_to_store(o, store_dtype) for o in out]
    return _to_store(out, store_dtype)


@dataclass
class EncodedBatch:
    """One batch of :func:`encode_batches`.

    Attributes:
        index: positions (into the encoded list) of the images decoded, in order.
        data: ``forward`` output of those images (``None`` when none of the batch could be decoded).
        failed: position -> error message for images of the batch that could not be decoded.
    """

    index: list[int]
    data: torch.Tensor | None
    failed: dict[int, str] = field(default_factory=dict)


def encode_batches(
    n: int,
    load: Callable[[int], np.ndarray],
    describe: Callable[[int], str],
    forward: Forward,
    device: torch.device,
    *,
    batch_size: int = 32,
    workers: int = 2,
    store_dtype: torch.dtype | None = None,
    pbar: Any = None,
) -> Iterator[EncodedBatch]:
    """Decode images ``0 .. n-1`` in batches (``workers`` threads) and run the frozen ``forward`` on each batch.

    Args:
        n: number of images.
        load: position -> ``(3, S, S)`` uint8 array (may raise one of :data:`DECODE_ERRORS`).
        describe: position -> what to name in an error message (usually the path).
        forward: frozen encoder part, ``(B, 3, S, S)`` uint8 on ``device`` -> ``(B, ...)``.
        batch_size: images per forward pass.
        store_dtype: dtype of floating outputs (``None`` keeps the output's).
        pbar: progress bar advanced by the number of images of each batch (``None``: none).

    Yields:
        One :class:`EncodedBatch` per ``batch_size`` images, in order.
    """

    def _load(i: int) -> tuple[int, np.ndarray | None, str]:
        try:
            return i, load(i), ""
        except DECODE_ERRORS as exc:
            return i, None, f"{describe(i)}: {type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, n, batch_size):
            loaded = list(pool.map(_load, range(start, min(n, start + batch_size))))
            good = [(i, a) for i, a, _ in loaded if a is not None]
            failed = {i: msg for i, a, msg in loaded if a is None}
            data = None
            if good:
                images = torch.from_numpy(np.stack([a for _, a in good])).to(device)
                data = frozen_forward(forward, images, store_dtype)
            if pbar is not None:
                pbar.update(len(loaded))
            yield EncodedBatch([i for i, _ in good], data, failed)


def progress_bar(total: int, desc: str, progress: bool | None = None, unit: str = "img") -> Any:
    """The progress bar of a feature-caching pass (items/s and ETA; see :func:`endoked.progress.bar`)."""
    return bar(total, desc=desc, unit=unit, enabled=progress)


def read_cache(path: Path | None, **match: Any) -> dict[str, Any] | None:
    """A saved cache file's content when it exists and every ``match`` entry equals the saved one, else None.

    ``match`` names what determines the features (e.g. ``keys=[...]``, ``signature=...``, ``views=3``), so a
    cache written for other images, another encoder or other settings is never reused.
    """
    if path is None or not Path(path).is_file():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if all(_equal(saved.get(k), v) for k, v in match.items()):
        return saved
    return None


def _equal(saved: Any, wanted: Any) -> bool:
    if isinstance(wanted, (list, tuple)) and isinstance(saved, (list, tuple)):
        return list(saved) == list(wanted)
    return bool(saved == wanted)


def write_cache(path: Path, content: dict[str, Any]) -> Path:
    """Save a cache file atomically (a killed write never leaves a truncated cache behind)."""
    with atomic_path(path) as tmp:
        torch.save(content, tmp)
    return Path(path)
