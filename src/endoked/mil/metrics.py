"""Instance-level metrics of MIL image scores (AUROC and AP from :mod:`endoked.stats`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from endoked.stats import auroc, average_precision


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
    return {
        "auroc": auroc(y[keep], s[keep]),
        "ap": average_precision(y[keep], s[keep]),
        "n": int(keep.sum()),
        "n_positive": int(y[keep].sum()),
    }
