"""Ranking metrics for bag and instance scores (pure numpy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties count one half).

    Args:
        scores: ``(N,)`` float, higher = more positive.
        labels: ``(N,)`` 0/1.

    Returns:
        AUROC in [0, 1], or NaN when one class is absent.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Average precision ``sum_k (R_k - R_{k-1}) P_k`` over distinct score thresholds (as scikit-learn).

    Returns NaN when there is no positive.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_threshold = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[last_of_threshold]
    precision = tp / (last_of_threshold + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def instance_metrics(scores: Sequence[float] | np.ndarray, flags: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Instance-level AUROC and AP of image scores against true polyp flags.

    Args:
        scores: ``(N,)`` image scores.
        flags: ``(N,)`` 1 = the image shows a polyp, 0 = it does not.

    Returns:
        ``{"auroc", "ap", "n", "n_positive"}``; NaN metrics when a class is missing.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(flags).astype(int)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and flags {y.shape} differ in shape")
    keep = np.isfinite(s)
    return {"auroc": auroc(s[keep], y[keep]), "ap": average_precision(s[keep], y[keep]),
            "n": int(keep.sum()), "n_positive": int(y[keep].sum())}
