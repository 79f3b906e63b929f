"""Streaming metric object: feed (map, mask) pairs one at a time, read set-level figures at the end.

Memory is constant in the number of images for the curves (three running sums of 256 float64 values);
per-image scalar records (about 20 numbers each) are kept for CSV output unless ``keep_per_image=False``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from endoked.eval.config import EvalConfig
from endoked.eval.inputs import prepare_pair
from endoked.eval.metrics import N_THRESHOLDS, THRESHOLDS, ImageScore, score_pair

#: Set-level figures returned by :meth:`PolypMetrics.compute`, in table order.
METRIC_KEYS: tuple[str, ...] = (
    "mean_dice",
    "mean_iou",
    "max_dice",
    "max_iou",
    "dice_05",
    "iou_05",
    "wf_beta",
    "s_alpha",
    "mean_e",
    "max_e",
    "adaptive_e",
    "mae",
)
_MEAN_OF_IMAGES = ("dice_05", "iou_05", "wf_beta", "s_alpha", "adaptive_e", "mae")


class PolypMetrics:
    """Accumulates the toolbox's polyp-segmentation metrics over a stream of images.

    Example (validation loop)::

        metric = PolypMetrics()
        for prob, mask in batches:            # prob: (H, W) float in [0, 1]; mask: (H, W) bool or 0/255
            metric.update(prob, mask)
        scores = metric.compute()             # {"mean_dice": ..., "mean_iou": ..., "n": ...}

    Args:
        config: eval settings (defaults reproduce the toolbox).
        keep_per_image: keep one scalar record per image (:attr:`records`).
    """

    def __init__(self, config: EvalConfig | None = None, keep_per_image: bool = True) -> None:
        self.config = config or EvalConfig()
        self.keep_per_image = keep_per_image
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.n = 0
        self.n_empty_gt = 0
        self.n_missing = 0
        self.n_resized = 0
        self._dice = np.zeros(N_THRESHOLDS)
        self._iou = np.zeros(N_THRESHOLDS)
        self._e = np.zeros(N_THRESHOLDS)
        self._sums: dict[str, float] = dict.fromkeys(_MEAN_OF_IMAGES, 0.0)
        self.records: list[dict[str, Any]] = []

    def update(self, pred: np.ndarray, gt: np.ndarray, name: str = "") -> dict[str, Any]:
        """Score one pair and add it.

        Args:
            pred: (H', W') map: uint8 0-255, uint16, bool, or float in [0, 1] (probabilities); resized to the
                mask's size (with a logged warning) when H', W' differ from H, W.
            gt: (H, W) mask: bool, or uint8 0/255 (foreground > 128).
            name: identifier stored in the per-image record (e.g. the file stem).

        Returns:
            The image's record (see :meth:`add`).
        """
        p, g, resized = prepare_pair(pred, gt, self.config, name)
        score = self.score(p, g)
        return self.add(score, name=name, resized=resized)

    def score(self, pred: np.ndarray, gt: np.ndarray) -> ImageScore:
        """Score an already prepared pair (pred (H, W) float64 in [0, 1], gt (H, W) bool) without adding it."""
        c = self.config
        return score_pair(
            pred,
            gt,
            alpha=c.alpha,
            beta2=c.beta2,
            binary_threshold=c.binary_threshold,
            emeasure_binarize=c.emeasure_binarize,
            empty_score=c.empty_score,
        )

    def add(self, score: ImageScore, name: str = "", resized: bool = False, missing: bool = False) -> dict[str, Any]:
        """Add an image scored elsewhere (e.g. in a worker process).

        Returns:
            The per-image record: ``name``, ``missing``, ``resized`` and the scalars of
            :class:`endoked.eval.metrics.ImageScore`.
        """
        self.n += 1
        self._dice += score.dice_curve
        self._iou += score.iou_curve
        self._e += score.e_curve
        for key in _MEAN_OF_IMAGES:
            self._sums[key] += score.scalars[key]
        self.n_empty_gt += int(score.scalars["n_fg"] == 0)
        self.n_missing += int(missing)
        self.n_resized += int(resized)
        record: dict[str, Any] = {"name": name, "missing": missing, "resized": resized, **score.scalars}
        if self.keep_per_image:
            self.records.append(record)
        return record

    def curves(self) -> dict[str, np.ndarray]:
        """Mean over images of the per-threshold curves.

        Returns:
            ``threshold`` (256,) descending 1..0 and ``dice``, ``iou``, ``e`` (256,) float64 (NaN if no image).
        """
        n = self.n if self.n else np.nan
        return {"threshold": THRESHOLDS.copy(), "dice": self._dice / n, "iou": self._iou / n, "e": self._e / n}

    def compute(self) -> dict[str, float | int]:
        """Set-level figures.

        Returns:
            ``mean_dice``/``mean_iou`` (mean over thresholds of the image-mean curve), ``max_dice``,
            ``max_iou``, ``dice_05``/``iou_05`` (image mean at the binary threshold), ``wf_beta``, ``s_alpha``,
            ``mean_e``/``max_e`` (over thresholds), ``adaptive_e``, ``mae`` (image means), and the counts ``n``,
            ``n_empty_gt``, ``n_missing``, ``n_resized``. Figures are NaN when no image was added.
        """
        cv = self.curves()
        n = self.n if self.n else np.nan
        out: dict[str, float | int] = {
            "mean_dice": float(np.mean(cv["dice"])),
            "mean_iou": float(np.mean(cv["iou"])),
            "max_dice": float(np.max(cv["dice"])),
            "max_iou": float(np.max(cv["iou"])),
            "mean_e": float(np.mean(cv["e"])),
            "max_e": float(np.max(cv["e"])),
        }
        for key in _MEAN_OF_IMAGES:
            out[key] = float(self._sums[key] / n)
        ordered: dict[str, float | int] = {k: out[k] for k in METRIC_KEYS}
        ordered.update(n=self.n, n_empty_gt=self.n_empty_gt, n_missing=self.n_missing, n_resized=self.n_resized)
        return ordered
