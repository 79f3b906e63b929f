"""Library entry points: train on a pool of (image, mask) pairs, or on a PraNet-layout folder.

Fully supervised training (real masks) and pseudo-label training share :func:`fit`; only the pool differs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked.errors import DataFormatError
from endoked.io import atomic_write_json, write_jsonl
from endoked.seg.config import SegConfig
from endoked.seg.data import PairStore, SegItem, list_pranet_folder, split_indices
from endoked.seg.train import TrainResult, dist_info, train_model

logger = logging.getLogger(__name__)


def fit(
    items: Sequence[SegItem],
    out_dir: Path,
    cfg: SegConfig,
    *,
    seed: int = 0,
    device: torch.device | None = None,
    workers: int = 2,
    epochs: int | None = None,
    init_checkpoint: Path | None = None,
    progress: bool = True,
    negatives: Sequence[SegItem] = (),
) -> TrainResult:
    """Train on a pool: decode it, hold out a seeded validation split, train, write a summary.

    ``negatives`` (items with ``mask=None``: polyp-free images, empty targets) join the training split only;
    the validation split, which chooses the checkpoint, is drawn from ``items`` alone.

    Writes into ``out_dir``: ``model.pt``, ``last.pt``, ``history.json``, ``curve.png``, ``summary.json``
    and, when some pairs are unusable, ``errors.jsonl`` (one record per skipped image).

    Raises:
        DataFormatError: no usable pair in the pool.
    """
    pool = list(items)
    if cfg.max_images is not None and len(pool) > cfg.max_images:
        keep = sorted(np.random.default_rng(seed + 1).permutation(len(pool))[: cfg.max_images].tolist())
        pool = [pool[i] for i in keep]
    if any(it.mask is None for it in pool):
        raise DataFormatError("fit: every item of the pool needs a mask; pass polyp-free images as negatives")
    negs = [SegItem(it.key, it.image, None) for it in negatives]
    store = PairStore(pool + negs, cfg.image_size, preload=cfg.preload, workers=workers)
    errors = store.check_all()  # decodes every pair once; keeps them when preloading
    if errors:
        write_jsonl(out_dir / "errors.jsonl", errors)
    labelled = [i for i, it in enumerate(store.items) if it.mask is not None]  # positives first, in order
    if not labelled:
        raise DataFormatError(f"none of the {len(pool)} training pairs could be read; see {out_dir / 'errors.jsonl'}")
    split_train, split_val = split_indices(len(labelled), cfg.val_fraction, cfg.val_max, seed)
    n_neg = len(store) - len(labelled)
    train_idx = [labelled[i] for i in split_train] + list(range(len(labelled), len(store)))
    val_idx = [labelled[i] for i in split_val]
    logger.info(
        "training on %d images (%d polyp-free), validating on %d (%d unusable)",
        len(train_idx),
        n_neg,
        len(val_idx),
        len(errors),
    )
    result = train_model(
        store,
        train_idx,
        val_idx,
        out_dir,
        cfg,
        seed=seed,
        device=device,
        epochs=epochs,
        init_checkpoint=init_checkpoint,
        progress=progress,
    )
    summary: dict[str, Any] = {
        "n_pool": len(pool),
        "n_negatives": n_neg,
        "n_train": result.n_train,
        "n_val": result.n_val,
        "n_errors": len(errors),
        "best_epoch": result.best_epoch,
        "best_val": result.best_val,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 1),
        "val_keys": [store.items[i].key for i in val_idx],
    }
    if dist_info()[1] == 0:
        atomic_write_json(out_dir / "summary.json", summary)
    return result


def train_folder(
    data: str | Path,
    out_dir: str | Path,
    cfg: SegConfig,
    *,
    seed: int = 0,
    device: torch.device | None = None,
    workers: int = 2,
    progress: bool = True,
) -> TrainResult:
    """Fully supervised training on a PraNet-layout folder (``data/images``, ``data/masks``, matched by stem).

    Images without a mask are listed in ``out_dir/errors.jsonl`` and skipped.
    """
    data, out_dir = Path(data), Path(out_dir)
    items, missing = list_pranet_folder(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    if missing:
        logger.warning("%d images in %s have no mask and are skipped", len(missing), data / "images")
        write_jsonl(out_dir / "missing_masks.jsonl", missing)
    return fit(items, out_dir, cfg, seed=seed, device=device, workers=workers, progress=progress)
