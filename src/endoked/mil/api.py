"""Library entry points of the mil package that work on files (the stage lives in :mod:`endoked.mil.stage`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from endoked.errors import DataFormatError
from endoked.io import atomic_write_text
from endoked.mil.checkpoint import load_model, score_images
from endoked.mil.data import load_image
from endoked.progress import track

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def score_folder(model: Path, images: Path, out: Path, batch_size: int = 32, device: str = "cpu") -> int:
    """Score every image under ``images`` with a MIL checkpoint; writes CSV ``image,score`` (path relative to
    ``images``, score empty when the image cannot be decoded). Returns the number of images."""
    if not images.is_dir():
        raise DataFormatError(f"image folder not found: {images}")
    files = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    encoder, heads, cfg, _ = load_model(model, device)
    rows: list[tuple[str, str]] = []
    for start in track(range(0, len(files), batch_size), total=(len(files) + batch_size - 1) // batch_size,
                       desc="mil score", unit="batch"):
        chunk = files[start:start + batch_size]
        arrays: list[np.ndarray | None] = []
        for f in chunk:
            try:
                arrays.append(load_image(f, cfg.image_size))
            except (OSError, ValueError):
                arrays.append(None)
        good = [a for a in arrays if a is not None]
        scores = iter(score_images(encoder, heads, torch.from_numpy(np.stack(good)), cfg.score_source)
                      if good else [])
        for f, a in zip(chunk, arrays, strict=True):
            rows.append((f.relative_to(images).as_posix(), f"{float(next(scores)):.6f}" if a is not None else ""))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image", "score"])
    writer.writerows(rows)
    atomic_write_text(out, buf.getvalue())
    return len(rows)
