"""Library entry points of the mil package that work on files (the stage lives in :mod:`endoked.mil.stage`)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked.batching import BatchOutput
from endoked.errors import DataFormatError
from endoked.io import atomic_write_text
from endoked.mil.checkpoint import load_model, score_images
from endoked.mil.config import MilConfig
from endoked.mil.data import load_image
from endoked.progress import track

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


def score_folder(model: Path, images: Path, out: Path, batch_size: int = 32, device: str = "cpu") -> int:
    """Score every image under ``images`` with a MIL checkpoint (:func:`process_batch`); writes CSV
    ``image,score`` (path relative to ``images``, score empty when the image cannot be decoded). Returns the
    number of images."""
    if not images.is_dir():
        raise DataFormatError(f"image folder not found: {images}")
    files = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    state = setup(model, device)
    rows: list[tuple[str, str]] = []
    for start in track(
        range(0, len(files), batch_size),
        total=(len(files) + batch_size - 1) // batch_size,
        desc="mil score",
        unit="batch",
    ):
        chunk = files[start : start + batch_size]
        batch = [{"exam_id": "", "image": f.relative_to(images).as_posix(), "path": str(f)} for f in chunk]
        for r in process_batch(batch, state).tables["mil/image_scores"]:
            rows.append((r["image"], f"{r['score']:.6f}" if r["score"] is not None else ""))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image", "score"])
    writer.writerows(rows)
    atomic_write_text(out, buf.getvalue())
    return len(rows)
