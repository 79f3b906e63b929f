"""Bags, the seeded exam-level split, image decoding and the encoder-output cache."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from endoked.errors import DataFormatError
from endoked.features import encode_batches, progress_bar, read_cache, write_cache
from endoked.imaging import load_image

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bag:
    """One exam: its label and the row numbers of its images in the feature store.

    Attributes:
        exam_id: the exam.
        label: 1 positive, 0 negative.
        items: indices into the cached encoder outputs (one per image of the exam).
    """

    exam_id: str
    label: int
    items: tuple[int, ...]


def split_bags(bags: Sequence[Bag], val_fraction: float, seed: int) -> tuple[list[Bag], list[Bag]]:
    """Seeded exam-level split, stratified by label; each class keeps at least one training bag and, when it
    has two or more bags, gives at least one to validation.

    Returns:
        ``(train, val)``, each in the input order.
    """
    rng = np.random.default_rng(seed)
    val_ids: set[str] = set()
    for label in (0, 1):
        ids = sorted(b.exam_id for b in bags if b.label == label)
        if len(ids) < 2:
            continue
        n_val = min(len(ids) - 1, max(1, round(val_fraction * len(ids))))
        val_ids.update(ids[i] for i in rng.permutation(len(ids))[:n_val])
    return [b for b in bags if b.exam_id not in val_ids], [b for b in bags if b.exam_id in val_ids]


@dataclass
class FeatureStore:
    """Cached encoder outputs (see :class:`endoked.mil.encoder.SplitEncoder`).

    Attributes:
        keys: one key per stored row (e.g. the image file's sha256).
        data: ``(M, ...)`` tensor: pooled features ``(M, F)``, feature maps ``(M, C, h, w)`` or images.
        failed: key -> error message for images that could not be decoded.
    """

    keys: list[str]
    data: torch.Tensor
    failed: dict[str, str]

    def index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.keys)}


def load_cached_store(cache_dir: Path) -> FeatureStore:
    """The :class:`FeatureStore` held by the chunk files :func:`encode_images` wrote to ``cache_dir``."""
    keys: list[str] = []
    tensors: list[torch.Tensor] = []
    failed: dict[str, str] = {}
    for cfile in sorted(cache_dir.glob("chunk_*.pt")):
        saved = read_cache(cfile)
        if saved is None:
            raise DataFormatError(f"{cfile}: unreadable encoder cache chunk; re-run the mil stage")
        keys.extend(saved["keys"])
        tensors.append(saved["data"])
        failed.update(dict(zip(saved["failed_keys"], saved["failed_msgs"], strict=True)))
    tensors = [t for t in tensors if t.numel() > 0]
    return FeatureStore(keys, torch.cat(tensors) if tensors else torch.empty(0), failed)


def encode_images(
    items: Sequence[tuple[str, str]],
    prefix: Callable[[torch.Tensor], torch.Tensor],
    size: int,
    device: torch.device,
    batch_size: int = 32,
    workers: int = 2,
    cache_dir: Path | None = None,
    chunk_size: int = 256,
    store_dtype: torch.dtype | None = None,
    progress: bool | None = None,
) -> FeatureStore:
    """Decode, resize and run the frozen encoder part over unique images once, in chunks.

    Args:
        items: ``(key, path)`` pairs; repeated keys are encoded once.
        prefix: frozen encoder part, ``(B, 3, size, size)`` uint8 on ``device`` -> ``(B, ...)``.
        size: square input size.
        device: where ``prefix`` runs.
        batch_size: images per forward pass.
        workers: decoding threads.
        cache_dir: if given, each finished chunk is saved there as ``chunk_XXXXX.pt`` and reused on a
            re-run with the same keys, so an interrupted pass resumes.
        chunk_size: images per chunk file.
        store_dtype: dtype of stored outputs (floating outputs only; ``None`` keeps the output's).
        progress: show a progress bar (``None``: the process-wide setting).

    Returns:
        The :class:`FeatureStore` (rows in first-seen key order, unreadable images in ``failed``).
    """
    unique: dict[str, str] = {}
    for key, path in items:
        unique.setdefault(key, path)
    keys = list(unique)
    chunks = [keys[i : i + chunk_size] for i in range(0, len(keys), chunk_size)]
    out_keys: list[str] = []
    tensors: list[torch.Tensor] = []
    failed: dict[str, str] = {}
    with progress_bar(len(keys), "mil encode", progress) as pbar:
        for c, chunk in enumerate(chunks):
            cfile = cache_dir / f"chunk_{c:05d}.pt" if cache_dir is not None else None
            saved = read_cache(cfile, all_keys=chunk)
            if saved is not None:
                out_keys.extend(saved["keys"])
                tensors.append(saved["data"])
                failed.update(dict(zip(saved["failed_keys"], saved["failed_msgs"], strict=True)))
                pbar.update(len(chunk))
                continue
            ck, cd, cf = _encode_chunk(chunk, unique, prefix, size, device, batch_size, workers, store_dtype, pbar)
            if cfile is not None:
                write_cache(
                    cfile,
                    {
                        "all_keys": chunk,
                        "keys": ck,
                        "data": cd,
                        "failed_keys": list(cf),
                        "failed_msgs": list(cf.values()),
                    },
                )
            out_keys.extend(ck)
            tensors.append(cd)
            failed.update(cf)
    tensors = [t for t in tensors if t.numel() > 0]
    data = torch.cat(tensors) if tensors else torch.empty(0)
    if failed:
        logger.warning("mil: %d images could not be decoded (first: %s)", len(failed), next(iter(failed.values())))
    return FeatureStore(out_keys, data, failed)


def _encode_chunk(
    chunk: Sequence[str],
    paths: dict[str, str],
    prefix: Callable[[torch.Tensor], torch.Tensor],
    size: int,
    device: torch.device,
    batch_size: int,
    workers: int,
    store_dtype: torch.dtype | None,
    pbar: object,
) -> tuple[list[str], torch.Tensor, dict[str, str]]:
    keys: list[str] = []
    outs: list[torch.Tensor] = []
    failed: dict[str, str] = {}
    for batch in encode_batches(
        len(chunk),
        lambda i: load_image(paths[chunk[i]], size),
        lambda i: paths[chunk[i]],
        prefix,
        device,
        batch_size=batch_size,
        workers=workers,
        store_dtype=store_dtype,
        pbar=pbar,
    ):
        failed.update({chunk[i]: msg for i, msg in batch.failed.items()})
        if batch.data is not None:
            keys.extend(chunk[i] for i in batch.index)
            outs.append(batch.data)
    return keys, (torch.cat(outs) if outs else torch.empty(0)), failed
