"""Ranking statistics shared by the stages (pure numpy/scipy).

Argument order is always ``(labels, scores)``, as in scikit-learn's ``roc_auc_score(y_true, y_score)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def auroc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney U statistic over ``n_pos * n_neg`` (ties count one half).

    Args:
        labels: ``(N,)`` 0/1 (any shape with N elements; flattened).
        scores: ``(N,)`` float, higher = more positive.

    Returns:
        AUROC in [0, 1], or NaN when one class is absent.

    Raises:
        ValueError: labels and scores differ in length, or a label is not 0/1.
    """
    raw = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if raw.shape != s.shape:
        raise ValueError(f"labels {raw.shape} and scores {s.shape} differ in length")
    if raw.size and not np.isin(raw, (0, 1)).all():  # also catches scores passed as labels
        raise ValueError(f"labels must be 0/1 (got values such as {raw[~np.isin(raw, (0, 1))][0]!r})")
    pos = raw.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Average precision ``sum_k (R_k - R_{k-1}) P_k`` over distinct score thresholds (as scikit-learn).

    Args:
        labels: ``(N,)`` 0/1.
        scores: ``(N,)`` float, higher = more positive.

    Returns:
        AP in [0, 1], or NaN when there is no positive.
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
