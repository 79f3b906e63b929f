"""Inference: probability maps at each input image's own size (``endoked predict``).

Each image is resized to the checkpoint's training size, the inference logits (``P1 + P2`` of Polyp-PVT,
``S2`` of PraNet) are upsampled bilinearly to the image's size and passed through a sigmoid; with ``tta_flip``
the logits of the horizontally flipped image (flipped back) are averaged in. Maps are written as
``<stem>.png``, 8-bit ``round(255 * p)``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from endoked.batching import BatchOutput, given, run_batches
from endoked.device import autocast_for, resolve_device
from endoked.errors import DataFormatError
from endoked.imaging import encode_png, read_rgb, write_png
from endoked.io import ensure_writable_dir, write_jsonl
from endoked.seg.checkpoint import SegNetwork, load_model
from endoked.seg.data import list_image_files

logger = logging.getLogger(__name__)

ERRORS = "predict/errors"  # a JSON record stream (not a run-folder table)


class Predictor:
    """Batched, device-agnostic inference of a trained network.

    Args:
        model: the network (moved to ``device``, eval mode).
        image_size: square input size the network was trained at.
        mean, std: RGB normalisation of inputs in [0, 1].
        device: where to run.
        tta_flip: average with the horizontally flipped prediction.
        amp: fp16 autocast on CUDA.
    """

    def __init__(
        self,
        model: SegNetwork,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        tta_flip: bool = False,
        amp: bool = True,
    ) -> None:
        self.model = model.to(device).eval()
        self.size = int(image_size)
        self.device = device
        self.tta_flip = tta_flip
        self.amp = amp
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | torch.device = "auto", tta_flip: bool = False
    ) -> Predictor:
        """Load ``model.pt`` (see :mod:`endoked.seg.checkpoint`) onto ``device``."""
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        model, ckpt = load_model(path)
        return cls(model, int(ckpt["image_size"]), ckpt["mean"], ckpt["std"], dev, tta_flip)

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Probability maps of a batch of images.

        Args:
            images: ``(H_i, W_i, 3) uint8`` RGB images (sizes may differ).

        Returns:
            One ``(H_i, W_i) float32`` map in [0, 1] per image.
        """
        if not images:
            return []
        resized = [
            cv2.resize(np.ascontiguousarray(im), (self.size, self.size), interpolation=cv2.INTER_LINEAR)
            for im in images
        ]
        x = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float() / 255.0
        x = ((x - self.mean) / self.std).to(self.device)
        with autocast_for(self.device, self.amp):
            logits = self.model.predict_logits(x).float()
            if self.tta_flip:
                logits = 0.5 * (logits + self.model.predict_logits(x.flip(-1)).float().flip(-1))
        out: list[np.ndarray] = []
        for j, im in enumerate(images):
            up = F.interpolate(logits[j : j + 1], size=im.shape[:2], mode="bilinear", align_corners=False)
            out.append(torch.sigmoid(up)[0, 0].cpu().numpy().astype(np.float32))
        return out


def to_png_bytes(prob: np.ndarray) -> np.ndarray:
    """``(H, W)`` float map in [0, 1] -> ``(H, W) uint8`` ``round(255 * p)``."""
    return np.clip(np.round(prob * 255.0), 0, 255).astype(np.uint8)


def save_map(prob: np.ndarray, path: Path) -> Path:
    """Write a probability map as an 8-bit grey PNG, atomically."""
    write_png(path, to_png_bytes(prob))
    return path


@dataclass
class PredictSummary:
    """What :func:`predict_folder` did: files written and per-image error records."""

    written: list[Path] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def process_batch(rows: list[dict[str, Any]], predictor: Predictor) -> BatchOutput:
    """The batch core of prediction: rows ``name``, ``image`` (a file) -> PNG maps (files ``<name>.png``) and
    ``predict/errors`` records (``name``, ``image``, ``reason``) for images that cannot be read."""
    out = BatchOutput(tables={ERRORS: []})
    names: list[str] = []
    images: list[np.ndarray] = []
    for row in rows:
        try:
            images.append(read_rgb(row["image"]))
            names.append(str(row["name"]))
        except DataFormatError as exc:
            out.tables[ERRORS].append({"name": row["name"], "image": str(row["image"]), "reason": str(exc)})
            logger.warning("skipping %s: %s", row["image"], exc)
    for name, prob in zip(names, predictor.predict(images), strict=True):
        out.files[f"{name}.png"] = encode_png(to_png_bytes(prob))
    return out


def given_or_builder(obj: Any) -> Callable[[], Any]:
    """A batch ``setup`` from a model object (anything with ``predict``: used as is) or from a function that
    builds one (e.g. ``partial(Predictor.from_checkpoint, path, device)``, which Ray actors call themselves)."""
    return partial(given, obj) if hasattr(obj, "predict") else obj  # type: ignore[no-any-return]


def predict_files(
    predictor: Predictor | Callable[[], Predictor],
    files: Sequence[tuple[str, Path]],
    out_dir: Path,
    batch_size: int = 8,
    progress: bool = True,
    skip_existing: bool = False,
) -> PredictSummary:
    """Predict ``(name, image file)`` pairs into ``out_dir/<name>.png`` with :func:`process_batch`, run by the
    resumable batch driver (:func:`endoked.batching.run_batches`, chunks of ``batch_size`` images in
    ``out_dir/.chunks``, removed when all are done); unreadable images become error records. With
    ``skip_existing`` a map already written counts as done (resume)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = PredictSummary()
    todo: list[dict[str, Any]] = []
    for name, path in files:
        if skip_existing and (out_dir / f"{name}.png").is_file():
            summary.written.append(out_dir / f"{name}.png")
        else:
            todo.append({"name": name, "image": str(path)})
    chunk_dir = out_dir / ".chunks"
    done = run_batches(
        todo,
        setup=given_or_builder(predictor),
        process_batch=process_batch,
        outputs=(ERRORS,),
        chunk_dir=chunk_dir,
        run_root=out_dir,
        chunk_size=batch_size,
        desc="predict",
        progress=progress,
    )
    failed = {str(e["name"]) for e in done.tables[ERRORS]}
    summary.written.extend(out_dir / f"{r['name']}.png" for r in todo if str(r["name"]) not in failed)
    summary.errors.extend(done.tables[ERRORS])
    shutil.rmtree(chunk_dir, ignore_errors=True)
    return summary


def predict_folder(
    model: str | Path,
    images: str | Path,
    out: str | Path,
    *,
    device: str = "auto",
    tta_flip: bool = False,
    batch_size: int = 8,
    progress: bool = True,
) -> PredictSummary:
    """``endoked predict``: one ``<stem>.png`` probability map (0-255, the image's size) per image in ``images``.

    Unreadable images and repeated stems are reported in ``out/errors.jsonl`` and skipped.

    Raises:
        DataFormatError: missing checkpoint or image folder, or no image in the folder.
    """
    images, out = Path(images), Path(out)
    if out.exists() and not out.is_dir():
        raise DataFormatError(f"--out {out} is an existing file, not a folder; give a folder for the maps")
    if images.is_dir() and out.is_dir() and out.resolve() == images.resolve():
        raise DataFormatError(
            f"--out {out} is the image folder itself: the maps would overwrite the images "
            "(same stems, .png); give another folder"
        )
    files = list_image_files(images)
    if not files:
        raise DataFormatError(f"no image (.jpg/.png/.bmp/.tif) in {images}")
    ensure_writable_dir(out)
    seen: set[str] = set()
    pairs: list[tuple[str, Path]] = []
    dup: list[dict[str, Any]] = []
    for f in files:
        if f.stem in seen:
            dup.append(
                {"name": f.stem, "image": str(f), "reason": "another image has the same stem; rename one of them"}
            )
            continue
        seen.add(f.stem)
        pairs.append((f.stem, f))
    if not Path(model).is_file():
        raise DataFormatError(f"checkpoint not found: {model}")
    setup = partial(Predictor.from_checkpoint, str(model), device, tta_flip)
    summary = predict_files(setup, pairs, out, batch_size, progress)
    summary.errors = dup + summary.errors
    if summary.errors:
        write_jsonl(out / "errors.jsonl", summary.errors)
    return summary
