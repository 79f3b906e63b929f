"""PNG plots of evaluation results (matplotlib, Agg backend): Dice-vs-threshold curves and Dice histograms."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from endoked.eval.folder import SetResult
from endoked.io import atomic_path


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "set"


def write_plots(results: Sequence[SetResult], out_dir: str | Path, bins: int = 20) -> list[Path]:
    """Write, per set, ``<set>_dice_curve.png`` (mean Dice vs threshold, one line per method) and
    ``<set>_dice_hist.png`` (histogram of per-image Dice, mean over thresholds, one series per method).

    Args:
        results: results of one or several methods on one or several sets.
        out_dir: output folder (created).
        bins: histogram bins over [0, 1].

    Returns:
        The written files.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_set: dict[str, list[SetResult]] = {}
    for r in results:
        by_set.setdefault(r.set, []).append(r)
    written: list[Path] = []
    edges = np.linspace(0.0, 1.0, bins + 1)
    for set_name, items in by_set.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        for r in items:
            ax.plot(
                r.curves["threshold"],
                r.curves["dice"],
                label=f"{r.method or 'prediction'} (mDice {r.metrics['mean_dice']:.3f})",
            )
        ax.set(xlabel="threshold", ylabel="mean Dice", title=f"{set_name}: Dice vs threshold", xlim=(0, 1), ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower center")
        written.append(_save(fig, out / f"{_safe(set_name)}_dice_curve.png"))
        plt.close(fig)

        fig, ax = plt.subplots(figsize=(6, 4))
        values = [[float(rec["dice"]) for rec in r.images] for r in items]
        ax.hist(values, bins=list(edges), label=[r.method or "prediction" for r in items])
        ax.set(
            xlabel="per-image Dice (mean over thresholds)",
            ylabel="images",
            title=f"{set_name}: per-image Dice (n={items[0].metrics['n']})",
        )
        ax.legend(loc="upper left")
        written.append(_save(fig, out / f"{_safe(set_name)}_dice_hist.png"))
        plt.close(fig)
    return written


def _save(fig: object, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)  # type: ignore[attr-defined]
    return path
