"""Training-curve figure (loss and validation mean Dice per epoch)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from endoked.io import atomic_path


def write_curve(history: Sequence[dict[str, Any]], path: Path, title: str = "segmentation training") -> Path:
    """Plot ``loss`` and ``val_mean_dice`` of each epoch record into a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(r["epoch"]) for r in history]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(epochs, [float(r["loss"]) for r in history], "o-", color="tab:blue", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("structure loss (P1 + P2)")
    val = [(int(r["epoch"]), float(r["val_mean_dice"])) for r in history if "val_mean_dice" in r]
    if val:
        ax2 = ax.twinx()
        ax2.plot([e for e, _ in val], [v for _, v in val], "s-", color="tab:orange", label="val mean Dice")
        ax2.set_ylabel("validation mean Dice")
        ax2.set_ylim(0.0, 1.0)
        fig.legend(loc="upper center", ncol=2, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
