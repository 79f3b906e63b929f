"""The data-efficiency curve: fine-tune on growing shares of a labelled pool, with and without pre-training.

For each share ``f`` of ``cfg.curve_fractions`` and each repeat ``r``, one class-stratified subset of the
pool is drawn (seeded by ``(cfg.seed, f, r)``) and split into training and validation images
(:func:`~endoked.biopsy.data.split_indices`). Every arm (e.g. ``pretrained``: the report-pre-trained model,
``imagenet``: the same architecture with a fresh head) is fine-tuned on the same images with the same step
budget (``cfg.finetune_steps``), calibrated on the same validation images, and scored on the test set.

Per share and arm the figures are the mean over repeats; their confidence interval resamples test cases
(the same cases for every repeat) with :func:`~endoked.biopsy.metrics.bootstrap_ci`. The paired difference
in AUROC between the first two arms gets its own interval from the same resamples.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from endoked.biopsy.config import BiopsyConfig
from endoked.biopsy.data import split_indices, subset_indices
from endoked.biopsy.features import Features
from endoked.biopsy.metrics import METRICS, bootstrap, bootstrap_ci, point_metrics
from endoked.biopsy.model import BiopsyModel
from endoked.biopsy.train import calibrate, probabilities, train_steps
from endoked.stats import auroc

logger = logging.getLogger(__name__)


def data_efficiency(
    arms: Mapping[str, tuple[BiopsyModel, bool]],
    pool: Mapping[str, Features],
    pool_labels: np.ndarray,
    pool_groups: Sequence[str],
    test: Mapping[str, Features],
    test_labels: np.ndarray,
    cfg: BiopsyConfig,
    device: torch.device,
    progress: bool | None = False,
) -> list[dict[str, Any]]:
    """Run the curve.

    Args:
        arms: name -> ``(starting model, is_pretrained)``; a pre-trained arm fine-tunes with
            ``cfg.finetune_lr``, the others train with ``cfg.lr``. Models are copied, never changed.
        pool: name -> cached outputs ``(P, V, ...)`` of the labelled pool for that arm's encoder (arms with
            the same frozen encoder may share one object).
        pool_labels: ``(P,)`` 0/1.
        pool_groups: ``(P,)`` patient/sequence of each pool image.
        test: name -> cached outputs ``(N, 1, ...)`` of the test images.
        test_labels: ``(N,)`` 0/1.

    Returns:
        One row per share and arm: ``fraction``, ``arm``, ``n_train`` / ``n_val`` (mean over repeats),
        ``repeats``, each metric (mean over repeats) with ``<metric>_ci`` and ``<metric>_sd`` (over
        repeats), ``threshold_mean``, ``seconds_per_fit``, ``test_probs_mean`` (test probabilities averaged over
        repeats, for ROC plots); the first arm's rows also carry
        ``auroc_gain`` (first minus second arm) and ``auroc_gain_ci``.
    """
    names = list(arms)
    y_pool = np.asarray(pool_labels, dtype=np.int64)
    y_test = np.asarray(test_labels, dtype=np.int64)
    groups = np.asarray([str(g) for g in pool_groups])
    rows: list[dict[str, Any]] = []
    for fi, frac in enumerate(cfg.curve_fractions):
        probs: dict[str, list[np.ndarray]] = {a: [] for a in names}
        thresholds: dict[str, list[float]] = {a: [] for a in names}
        n_train: list[int] = []
        n_val: list[int] = []
        seconds: dict[str, list[float]] = {a: [] for a in names}
        for r in range(cfg.curve_repeats):
            seed = cfg.seed * 1_000_003 + fi * 1009 + r
            sub = subset_indices(y_pool, frac, seed)
            tr, va = split_indices(y_pool[sub], groups[sub], cfg.val_fraction, seed)
            tr_idx, va_idx = sub[tr], sub[va]
            n_train.append(len(tr_idx))
            n_val.append(len(va_idx))
            for name in names:
                base, pretrained = arms[name]
                model = copy.deepcopy(base)
                t0 = time.perf_counter()
                train_steps(
                    model,
                    pool[name].select(tr_idx),
                    y_pool[tr_idx],
                    cfg,
                    steps=cfg.finetune_steps,
                    lr=cfg.finetune_lr if pretrained else cfg.lr,
                    label_smoothing=cfg.label_smoothing,
                    seed=seed,
                    device=device,
                    progress=progress,
                    desc=f"curve {frac:g} {name}",
                )
                calibrate(model, pool[name].select(va_idx), y_pool[va_idx], cfg, device)
                seconds[name].append(time.perf_counter() - t0)
                probs[name].append(probabilities(model, test[name], device))
                thresholds[name].append(model.threshold)
        for k, name in enumerate(names):
            p = np.stack(probs[name])
            per = [point_metrics(y_test, pr, t) for pr, t in zip(p, thresholds[name], strict=True)]
            row: dict[str, Any] = {
                "fraction": frac,
                "arm": name,
                "n_train": float(np.mean(n_train)),
                "n_val": float(np.mean(n_val)),
                "repeats": cfg.curve_repeats,
                "threshold_mean": float(np.mean(thresholds[name])),
                "seconds_per_fit": float(np.mean(seconds[name])),
                "test_probs_mean": p.mean(axis=0).tolist(),
            }
            ci = (
                bootstrap_ci(y_test, p, thresholds[name], cfg.bootstrap, cfg.ci_level, cfg.seed)
                if cfg.bootstrap
                else {}
            )
            for m in METRICS:
                vals = np.array([x[m] for x in per], dtype=np.float64)
                row[m] = float(np.nanmean(vals))
                row[f"{m}_sd"] = float(np.nanstd(vals))
                if m in ci:
                    row[f"{m}_ci"] = list(ci[m])
            if k == 0 and len(names) > 1 and cfg.bootstrap:
                other = np.stack(probs[names[1]])
                row["auroc_gain"] = row["auroc"] - float(np.mean([auroc(y_test, q) for q in other]))
                row["auroc_gain_ci"] = list(paired_auroc_gain_ci(y_test, p, other, cfg)["gain"])
            rows.append(row)
            logger.info("curve %.2f %s: n_train %.0f AUROC %.3f", frac, name, row["n_train"], row["auroc"])
    return rows


def paired_auroc_gain_ci(
    labels: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, cfg: BiopsyConfig
) -> dict[str, tuple[float, float]]:
    """Bootstrap interval of mean AUROC(a) - mean AUROC(b), both ``(R, N)`` scored on the same cases."""
    y = np.asarray(labels, dtype=np.int64)

    def stat(idx: np.ndarray) -> dict[str, float]:
        a = np.mean([auroc(y[idx], p[idx]) for p in probs_a])
        b = np.mean([auroc(y[idx], p[idx]) for p in probs_b])
        return {"gain": float(a - b)}

    return bootstrap(y.size, stat, cfg.bootstrap, cfg.ci_level, cfg.seed)
