"""Classification metrics with bootstrap confidence intervals, operating points and the ROC plot.

Positive class = neoplastic (label 1). Sensitivity = TP / (TP + FN), specificity = TN / (TN + FP); a
prediction is positive when ``prob >= threshold``. AUROC is the Mann-Whitney statistic (ties count one half).
Confidence intervals are percentile intervals of a seeded case-resampling bootstrap (Efron & Tibshirani,
*An Introduction to the Bootstrap*, 1993, ch. 13); resamples holding a single class are skipped for AUROC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from endoked.io import atomic_path
from endoked.stats import auroc

METRICS: tuple[str, ...] = ("auroc", "accuracy", "sensitivity", "specificity")


def _check(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probs {p.shape} differ in length")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    return y, p


def roc_curve(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points at every distinct score.

    Returns:
        ``(fpr, tpr, thresholds)``, each ``(T + 1,)`` float64, starting at (0, 0) with threshold +inf;
        a point is "positive when prob >= threshold".
    """
    y, p = _check(labels, probs)
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(p_sorted)), y.size - 1] if y.size else np.array([], dtype=np.int64)
    tps = np.cumsum(y_sorted)[last] if y.size else np.array([])
    fps = (last + 1) - tps
    n1, n0 = max(int(y.sum()), 1), max(int(y.size - y.sum()), 1)
    fpr = np.r_[0.0, fps / n0]
    tpr = np.r_[0.0, tps / n1]
    return fpr, tpr, np.r_[np.inf, p_sorted[last]]


def threshold_youden(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """Threshold maximising sensitivity + specificity - 1 (the largest such score); None without both classes."""
    y, _ = _check(labels, probs)
    if y.sum() == 0 or y.sum() == y.size:
        return None
    fpr, tpr, thr = roc_curve(labels, probs)
    j = tpr - fpr
    best = int(np.argmax(j[1:])) + 1
    return float(thr[best])


def threshold_for_sensitivity(labels: np.ndarray, probs: np.ndarray, target: float) -> float | None:
    """The largest threshold whose sensitivity reaches ``target``; None without positives."""
    y, _ = _check(labels, probs)
    if y.sum() == 0:
        return None
    _, tpr, thr = roc_curve(labels, probs)
    ok = np.flatnonzero(tpr >= target - 1e-12)
    return float(thr[ok[0]]) if len(ok) and np.isfinite(thr[ok[0]]) else float(thr[-1])


def point_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float, with_auroc: bool = True) -> dict[str, float]:
    """AUROC (unless ``with_auroc`` is false), accuracy, sensitivity, specificity (NaN when undefined) and the
    confusion counts."""
    y, p = _check(labels, probs)
    pred = p >= threshold
    tp = int((pred & (y == 1)).sum())
    tn = int((~pred & (y == 0)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    nan = float("nan")
    return {
        "auroc": auroc(y, p) if with_auroc else nan,
        "accuracy": (tp + tn) / y.size if y.size else nan,
        "sensitivity": tp / (tp + fn) if tp + fn else nan,
        "specificity": tn / (tn + fp) if tn + fp else nan,
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "n": int(y.size),
    }


def bootstrap(
    n: int, statistic: Callable[[np.ndarray], dict[str, float]], n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of any statistics of ``n`` cases.

    Args:
        n: number of cases.
        statistic: case indices ``(n,)`` int64 (drawn with replacement) -> named figures; non-finite figures
            of a resample are skipped (e.g. AUROC of a one-class resample).
        n_boot: resamples (seeded by ``seed``).

    Returns:
        figure -> ``(low, high)``; ``(nan, nan)`` when no resample defines it.
    """
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(n_boot):
        for name, v in statistic(rng.integers(0, n, size=n)).items():
            if np.isfinite(v):
                values.setdefault(name, []).append(float(v))
            else:
                values.setdefault(name, [])
    return {name: percentile_ci(v, level) for name, v in values.items()}


def percentile_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap figures (non-finite ones skipped); ``(nan, nan)`` when none is finite."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    alpha = (1.0 - level) / 2.0
    return (float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))) if v.size else (np.nan, np.nan)


def bootstrap_aurocs(labels: np.ndarray, probs: np.ndarray, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """AUROC of each of R models on each case resample that :func:`bootstrap` draws for the same case count and
    ``seed``, so that intervals of AUROC differences between models can be read from one pass per model.

    Args:
        labels: ``(N,)`` 0/1.
        probs: ``(N,)`` or ``(R, N)`` scores of R models on the same cases.

    Returns:
        ``(n_boot, R)`` float64; NaN for a resample holding a single class.
    """
    y = np.asarray(labels).astype(np.int64).ravel()
    p2 = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, p2.shape[0]), dtype=np.float64)
    for b in range(n_boot):
        idx = rng.integers(0, y.size, size=y.size)
        out[b] = [auroc(y[idx], p[idx]) for p in p2]
    return out


def bootstrap_ci(
    labels: np.ndarray,
    probs: np.ndarray,
    threshold: float | Sequence[float],
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    metrics: Sequence[str] = METRICS,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of :func:`point_metrics` figures (cases resampled with replacement).

    Args:
        labels: ``(N,)`` 0/1.
        probs: ``(N,)``, or ``(R, N)`` for R models scored on the same cases: a figure is then the mean over
            the R models, each resample using the same cases for all of them.
        threshold: one threshold, or R (one per model).

    Returns:
        metric -> ``(low, high)``.
    """
    y = np.asarray(labels).astype(np.int64).ravel()
    p2 = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (p2.shape[0],))
    with_auroc = "auroc" in metrics

    def stat(idx: np.ndarray) -> dict[str, float]:
        rows = [point_metrics(y[idx], p[idx], float(t), with_auroc) for p, t in zip(p2, thr, strict=True)]
        return {m: float(np.mean([r[m] for r in rows])) for m in metrics}

    out = bootstrap(y.size, stat, n_boot, level, seed)
    return {m: out.get(m, (np.nan, np.nan)) for m in metrics}


def evaluate(
    labels: np.ndarray, probs: np.ndarray, threshold: float, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Point figures, their bootstrap intervals (``<metric>_ci``) and the threshold, JSON-ready."""
    out: dict[str, Any] = {"threshold": float(threshold), **point_metrics(labels, probs, threshold)}
    if n_boot > 0:
        for m, (lo, hi) in bootstrap_ci(labels, probs, threshold, n_boot, level, seed).items():
            out[f"{m}_ci"] = [lo, hi]
    out["ci_level"] = level
    out["bootstrap"] = n_boot
    return out


def plot_roc(
    path: Path,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str = "ROC",
    points: dict[str, tuple[float, float]] | None = None,
) -> Path:
    """Write ROC curves as a PNG (matplotlib Agg backend).

    Args:
        curves: legend label -> ``(labels (N,) 0/1, probs (N,))``.
        points: legend label -> ``(fpr, tpr)`` of an operating point to mark.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    for name, (y, p) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUROC {auroc(y, p):.3f})")
    for name, (x, yy) in (points or {}).items():
        ax.plot([x], [yy], "o", label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=0.8)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(title)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
