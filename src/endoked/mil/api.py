"""Library entry points of the mil package that work on files (the stage lives in :mod:`endoked.mil.stage`)."""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked.batching import BatchOutput, run_batches
from endoked.errors import DataFormatError
from endoked.io import atomic_path
from endoked.mil.checkpoint import load_model, score_images
from endoked.mil.config import MilConfig
from endoked.mil.data import load_cached_store, load_image
from endoked.mil.train import score_rows
from endoked.progress import progress_enabled

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class MilScorer:
    """The batch core's state: a trained MIL model (encoder + heads) on its device and its config."""

    encoder: Any
    heads: Any
    cfg: MilConfig


def setup(model: str | Path, device: str = "cpu") -> MilScorer:
    """Load a MIL checkpoint (``mil/model.pt``) for :func:`process_batch`."""
    encoder, heads, cfg, _ = load_model(Path(model), device)
    return MilScorer(encoder, heads, cfg)


def process_batch(rows: list[dict[str, Any]], state: MilScorer) -> BatchOutput:
    """The batch core of MIL inference: rows ``exam_id``, ``image``, ``path`` -> ``mil/image_scores`` rows
    (``score`` null when the image cannot be decoded; ``bag_label`` taken from the row, -1 when absent)."""
    arrays: list[np.ndarray | None] = []
    for row in rows:
        try:
            arrays.append(load_image(row["path"], state.cfg.image_size))
        except (OSError, ValueError):
            arrays.append(None)
    good = [a for a in arrays if a is not None]
    scores = iter(
        score_images(state.encoder, state.heads, torch.from_numpy(np.stack(good)), state.cfg.score_source)
        if good
        else []
    )
    out = [
        {
            "exam_id": str(row["exam_id"]),
            "image": str(row["image"]),
            "score": float(next(scores)) if a is not None else None,
            "bag_label": int(row.get("bag_label", -1)),
        }
        for row, a in zip(rows, arrays, strict=True)
    ]
    return BatchOutput(tables={"mil/image_scores": out})


@dataclass
class CachedScorer:
    """The state of :func:`process_cached_batch`: a trained MIL model and the stage's cached encoder outputs."""

    encoder: Any
    heads: Any
    cfg: MilConfig
    data: torch.Tensor
    index: dict[str, int]
    device: torch.device


def setup_cached(model: str | Path, cache_dir: str | Path, device: str = "cpu") -> CachedScorer:
    """Load a MIL checkpoint and the encoder-output cache the stage wrote (``mil/cache``) for
    :func:`process_cached_batch`."""
    encoder, heads, cfg, _ = load_model(Path(model), device)
    store = load_cached_store(Path(cache_dir))
    return CachedScorer(encoder, heads, cfg, store.data, store.index(), torch.device(device))


def process_cached_batch(rows: list[dict[str, Any]], state: CachedScorer) -> BatchOutput:
    """The batch core of the mil stage's image scoring: rows ``exam_id``, ``image``, ``key`` (the cache key),
    ``bag_label`` -> ``mil/image_scores`` rows (``score`` null when the image has no cached features: it could
    not be decoded)."""
    found = [state.index[str(r["key"])] for r in rows if str(r["key"]) in state.index]
    scores = iter(
        score_rows(state.heads, state.encoder, state.data[found], state.cfg, state.device).tolist() if found else []
    )
    out = [
        {
            "exam_id": str(r["exam_id"]),
            "image": str(r["image"]),
            "score": next(scores) if str(r["key"]) in state.index else None,
            "bag_label": int(r["bag_label"]),
        }
        for r in rows
    ]
    return BatchOutput(tables={"mil/image_scores": out})


def score_folder(model: Path, images: Path, out: Path, batch_size: int = 32, device: str = "cpu") -> int:
    """Score every image under ``images`` with a MIL checkpoint (:func:`process_batch`); writes CSV
    ``image,score`` (path relative to ``images``, score empty when the image cannot be decoded). Returns the
    number of images."""
    if not images.is_dir():
        raise DataFormatError(f"image folder not found: {images}")
    files = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    chunk_dir = out.parent / f".{out.name}.chunks"  # finished chunks, reused when an interrupted run resumes
    done = run_batches(
        [{"exam_id": "", "image": f.relative_to(images).as_posix(), "path": str(f)} for f in files],
        setup=partial(setup, str(model), device),
        process_batch=process_batch,
        outputs=("mil/image_scores",),
        chunk_dir=chunk_dir,
        run_root=out.parent,
        chunk_size=batch_size,
        desc="mil score",
        progress=progress_enabled(),
        collect=False,
    )
    n = 0
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["image", "score"])
        for chunk in done.chunk_rows("mil/image_scores"):  # one chunk in memory at a time
            writer.writerows((r["image"], f"{r['score']:.6f}" if r["score"] is not None else "") for r in chunk)
            n += len(chunk)
    shutil.rmtree(chunk_dir, ignore_errors=True)
    return n
