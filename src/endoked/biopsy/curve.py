"""The data-efficiency curve: fine-tune on growing shares of a labelled pool, with and without pre-training.

For each share ``f`` of ``cfg.curve_fractions`` and each repeat ``r``, one class-stratified subset of the
pool is drawn (seeded by ``(cfg.seed, f, r)``) and split into training and validation images
(:func:`~endoked.biopsy.data.split_indices`). Every arm (e.g. ``pretrained``: the report-pre-trained model,
``imagenet``: the same architecture with a fresh head) is fine-tuned on the same images with the same step
budget (``cfg.finetune_steps``) by :func:`~endoked.biopsy.train.finetune` (the recipe of ``endoked biopsy
train``), calibrated on the same validation images, and scored on the test set. A pre-trained arm can be read
under several selection rules (``rules``: last weights, chosen on validation, interpolated) from one training
run per subset; each rule gives its own row.

Per share, arm and rule the figures are the mean over repeats; their confidence interval resamples test cases
(the same cases for every repeat) with :func:`~endoked.biopsy.metrics.bootstrap_ci`. Paired differences in
AUROC get their own intervals from the same resamples: against the baseline arm (``auroc_gain``) and, for
pre-trained arms, against the model they started from, not fine-tuned (``auroc_gain_vs_start``).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from endoked.biopsy.config import BiopsyConfig, FinetuneSelect, SelectMetric
from endoked.biopsy.data import split_indices, subset_indices
from endoked.biopsy.features import Features
from endoked.biopsy.metrics import METRICS, bootstrap_aurocs, bootstrap_ci, percentile_ci, point_metrics
from endoked.biopsy.model import BiopsyModel
from endoked.biopsy.train import calibrate, finetune, probabilities
from endoked.stats import auroc

logger = logging.getLogger(__name__)

KEPT = ("pretrained", "finetuned", "interpolated")


def rule_name(select: str, metric: str) -> str:
    """Label of a selection rule in curve rows: ``last``, ``validation (auroc)``, ``interpolate (log_loss)``."""
    return select if select == "last" else f"{select} ({metric})"


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
    *,
    configs: Mapping[str, BiopsyConfig] | None = None,
    rules: Sequence[tuple[FinetuneSelect, SelectMetric]] | None = None,
    baseline: str | None = None,
) -> list[dict[str, Any]]:
    """Run the curve.

    Args:
        arms: name -> ``(starting model, is_pretrained)``; a pre-trained arm fine-tunes with
            ``cfg.finetune_lr`` (and ``finetune_anchor``, ``finetune_select``), the others train with ``cfg.lr``
            and keep their last weights. Models are copied, never changed.
        pool: name -> cached outputs ``(P, V, ...)`` of the labelled pool for that arm's encoder (arms with
            the same frozen encoder may share one object).
        pool_labels: ``(P,)`` 0/1.
        pool_groups: ``(P,)`` patient/sequence of each pool image.
        test: name -> cached outputs ``(N, 1, ...)`` of the test images.
        test_labels: ``(N,)`` 0/1.
        configs: name -> the configuration that arm fine-tunes with (e.g. another ``finetune_anchor``); default
            ``cfg``. Shares, repeats, splits and intervals always follow ``cfg``.
        rules: ``(finetune_select, finetune_select_metric)`` pairs read from every pre-trained arm's fine-tuned
            model, one row each (default: the arm configuration's pair). Arms trained from a fresh head give one
            row (``last``).
        baseline: the arm the others' AUROC gain is paired against; default the second arm (no gain with one arm).

    Returns:
        One row per share, arm and rule: ``fraction``, ``arm``, ``select`` (:func:`rule_name`), ``anchor``,
        ``n_train`` / ``n_val`` (mean over repeats), ``repeats``, each metric (mean over repeats) with
        ``<metric>_ci`` and ``<metric>_sd`` (over repeats), ``kept`` (repeats that kept the pre-trained, the
        fine-tuned, interpolated weights), ``alpha_mean``, ``threshold_mean``, ``seconds_per_fit`` (training
        and selection), ``test_probs_mean`` (test probabilities averaged over repeats, for ROC plots). Rows of
        arms other than the baseline carry ``auroc_gain`` (minus the baseline's AUROC) and ``auroc_gain_ci``;
        rows of pre-trained arms carry ``start_auroc`` (test AUROC of the starting model) and
        ``auroc_gain_vs_start`` with ``auroc_gain_vs_start_ci``.
    """
    names = list(arms)
    if baseline is None and len(names) > 1:
        baseline = names[1]
    if baseline is not None and baseline not in arms:
        raise ValueError(f"baseline {baseline!r} is not an arm ({names})")
    arm_cfg = {name: (configs or {}).get(name, cfg) for name in names}
    arm_rules: dict[str, list[tuple[FinetuneSelect, SelectMetric]]] = {}
    for name in names:
        own = arm_cfg[name]
        if not arms[name][1]:
            arm_rules[name] = [("last", own.finetune_select_metric)]
        else:
            arm_rules[name] = list(rules) if rules is not None else [(own.finetune_select, own.finetune_select_metric)]
    keys = [(name, rule) for name in names for rule in arm_rules[name]]
    y_pool = np.asarray(pool_labels, dtype=np.int64)
    y_test = np.asarray(test_labels, dtype=np.int64)
    groups = np.asarray([str(g) for g in pool_groups])
    start_probs = {name: probabilities(arms[name][0], test[name], device) for name in names if arms[name][1]}
    # AUROC of every model on every bootstrap resample of the test cases (the same resamples throughout), so
    # each interval of an AUROC or of a paired difference is read from one pass per model
    boot = cfg.bootstrap > 0
    start_boot = {n: bootstrap_aurocs(y_test, p, cfg.bootstrap, cfg.seed) for n, p in start_probs.items() if boot}
    rows: list[dict[str, Any]] = []
    for fi, frac in enumerate(cfg.curve_fractions):
        probs: dict[Any, list[np.ndarray]] = {k: [] for k in keys}
        thresholds: dict[Any, list[float]] = {k: [] for k in keys}
        choices: dict[Any, list[dict[str, Any]]] = {k: [] for k in keys}
        seconds: dict[Any, list[float]] = {k: [] for k in keys}
        n_train: list[int] = []
        n_val: list[int] = []
        for r in range(cfg.curve_repeats):
            seed = cfg.seed * 1_000_003 + fi * 1009 + r
            sub = subset_indices(y_pool, frac, seed)
            tr, va = split_indices(y_pool[sub], groups[sub], cfg.val_fraction, seed)
            tr_idx, va_idx = sub[tr], sub[va]
            n_train.append(len(tr_idx))
            n_val.append(len(va_idx))
            for name in names:
                base, pretrained = arms[name]
                val = pool[name].select(va_idx)
                t0 = time.perf_counter()
                _, fitted = finetune(
                    copy.deepcopy(base),
                    pool[name].select(tr_idx),
                    y_pool[tr_idx],
                    val,
                    y_pool[va_idx],
                    arm_cfg[name],
                    pretrained=pretrained,
                    seed=seed,
                    device=device,
                    progress=progress,
                    desc=f"curve {frac:g} {name}",
                    rules=arm_rules[name],
                )
                fit_s = time.perf_counter() - t0
                for rule, (model, info) in zip(arm_rules[name], fitted, strict=True):
                    calibrate(model, val, y_pool[va_idx], cfg, device)
                    key = (name, rule)
                    seconds[key].append(fit_s)
                    probs[key].append(probabilities(model, test[name], device))
                    thresholds[key].append(model.threshold)
                    choices[key].append(info)
        stacked = {k: np.stack(probs[k]) for k in keys}
        boot_auc = {k: bootstrap_aurocs(y_test, stacked[k], cfg.bootstrap, cfg.seed).mean(axis=1) for k in keys if boot}
        base_key = (baseline, arm_rules[baseline][0]) if baseline is not None else None
        for name, rule in keys:
            key = (name, rule)
            p = stacked[key]
            per = [point_metrics(y_test, pr, t) for pr, t in zip(p, thresholds[key], strict=True)]
            row: dict[str, Any] = {
                "fraction": frac,
                "arm": name,
                "select": rule_name(*rule),
                "anchor": arm_cfg[name].finetune_anchor if arms[name][1] else 0.0,
                "n_train": float(np.mean(n_train)),
                "n_val": float(np.mean(n_val)),
                "repeats": cfg.curve_repeats,
                "kept": {k: sum(c["kept"] == k for c in choices[key]) for k in KEPT},
                "alpha_mean": float(np.mean([c["alpha"] for c in choices[key]])),
                "threshold_mean": float(np.mean(thresholds[key])),
                "seconds_per_fit": float(np.mean(seconds[key])),
                "test_probs_mean": p.mean(axis=0).tolist(),
            }
            ci: dict[str, tuple[float, float]] = {}
            if boot:
                others = tuple(m for m in METRICS if m != "auroc")
                ci = bootstrap_ci(y_test, p, thresholds[key], cfg.bootstrap, cfg.ci_level, cfg.seed, others)
                ci["auroc"] = percentile_ci(boot_auc[key], cfg.ci_level)
            for m in METRICS:
                vals = np.array([x[m] for x in per], dtype=np.float64)
                row[m] = float(np.nanmean(vals))
                row[f"{m}_sd"] = float(np.nanstd(vals))
                if m in ci:
                    row[f"{m}_ci"] = list(ci[m])
            if base_key is not None and name != baseline:
                row["auroc_gain"] = row["auroc"] - float(np.mean([auroc(y_test, q) for q in stacked[base_key]]))
                if boot:
                    row["auroc_gain_ci"] = list(percentile_ci(boot_auc[key] - boot_auc[base_key], cfg.ci_level))
            if name in start_probs:
                row["start_auroc"] = auroc(y_test, start_probs[name])
                row["auroc_gain_vs_start"] = row["auroc"] - row["start_auroc"]
                if boot:
                    gain = boot_auc[key] - start_boot[name][:, 0]
                    row["auroc_gain_vs_start_ci"] = list(percentile_ci(gain, cfg.ci_level))
            rows.append(row)
            logger.info(
                "curve %.2f %s %s: n_train %.0f AUROC %.3f kept %s",
                frac,
                name,
                row["select"],
                row["n_train"],
                row["auroc"],
                row["kept"],
            )
    return rows


def paired_auroc_gain_ci(
    labels: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, cfg: BiopsyConfig
) -> dict[str, tuple[float, float]]:
    """Bootstrap interval of mean AUROC(a) - mean AUROC(b), both ``(R, N)`` scored on the same cases."""
    a = bootstrap_aurocs(labels, probs_a, cfg.bootstrap, cfg.seed).mean(axis=1)
    b = bootstrap_aurocs(labels, probs_b, cfg.bootstrap, cfg.seed).mean(axis=1)
    return {"gain": percentile_ci(a - b, cfg.ci_level)}
