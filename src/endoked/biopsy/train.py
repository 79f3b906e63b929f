"""Training on cached encoder outputs, temperature scaling and the operating point.

One step draws ``batch_size`` cached rows (class-balanced when ``class_balance='sampler'``) and one random
view (original / flips) of each, runs the trainable encoder suffix and the head, and minimises binary
cross-entropy (AdamW, cosine learning-rate decay over the step budget). All randomness comes from
generators seeded by ``seed``, so a run is repeatable.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch.nn import functional as F

from endoked.biopsy.config import BiopsyConfig
from endoked.biopsy.features import Features
from endoked.biopsy.metrics import threshold_for_sensitivity, threshold_youden
from endoked.biopsy.model import BiopsyModel
from endoked.device import autocast_for
from endoked.errors import DataFormatError
from endoked.training import TrainLoop, TrainTask

logger = logging.getLogger(__name__)


@dataclass
class FitLog:
    """What a training run did: step budget, time and a loss trace (mean loss per tenth of the budget)."""

    steps: int
    seconds: float
    n_train: int
    losses: list[float] = field(default_factory=list)


def _batch_indices(labels: np.ndarray, batch_size: int, balanced: bool, rng: np.random.Generator) -> np.ndarray:
    if not balanced or labels.min() == labels.max():
        return rng.integers(0, labels.size, size=batch_size)
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    take_pos = rng.random(batch_size) < 0.5
    out = np.where(
        take_pos, pos[rng.integers(0, pos.size, size=batch_size)], neg[rng.integers(0, neg.size, size=batch_size)]
    )
    return out


class StepsTask(TrainTask):
    """A step budget as a :class:`endoked.training.TrainTask`: each "epoch" is one tenth of the budget
    (``max(1, steps // 10)`` steps, the last one possibly shorter) and records its mean loss."""

    def __init__(
        self,
        model: BiopsyModel,
        feats: Features,
        labels: np.ndarray,
        cfg: BiopsyConfig,
        steps: int,
        lr: float,
        label_smoothing: float,
        seed: int,
        device: torch.device,
    ) -> None:
        self.ok = np.flatnonzero(feats.ok)
        if self.ok.size == 0:
            raise DataFormatError("no readable training image")
        self.y = np.asarray(labels, dtype=np.int64)[self.ok]
        self.model, self.data, self.cfg, self.steps, self.device = model, feats.data, cfg, steps, device
        self.label_smoothing = label_smoothing
        params = [{"params": list(model.head.parameters()), "lr": lr}]
        enc_params = model.encoder.trainable_parameters()
        if enc_params:
            params.append({"params": enc_params, "lr": cfg.encoder_lr})
        self.opt = torch.optim.AdamW(params, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
        )
        y = self.y
        self.pos_weight = None
        if cfg.class_balance == "loss" and 0 < y.sum() < y.size:
            self.pos_weight = torch.tensor((y.size - y.sum()) / y.sum(), device=device)
        self.rng = np.random.default_rng(seed)
        self.chunk = max(1, steps // 10)
        self.items_per_epoch = self.chunk
        self.epochs = math.ceil(steps / self.chunk)

    def train_epoch(self, epoch: int, progress: Any) -> dict[str, Any]:
        cfg, y = self.cfg, self.y
        running: list[float] = []
        for _ in range(epoch * self.chunk, min(self.steps, (epoch + 1) * self.chunk)):
            rows = _batch_indices(y, cfg.batch_size, cfg.class_balance == "sampler", self.rng)
            views = self.rng.integers(0, int(self.data.shape[1]), size=rows.size)
            x = self.data[torch.as_tensor(self.ok[rows]), torch.as_tensor(views)].to(self.device)
            target = torch.as_tensor(y[rows], dtype=torch.float32, device=self.device)
            target = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
            with autocast_for(self.device):
                logits = self.model.logits_from_cached(x)
            loss = F.binary_cross_entropy_with_logits(logits.float(), target, pos_weight=self.pos_weight)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            running.append(float(loss.detach()))
            progress.update(1)
        return {"loss": round(float(np.mean(running)), 5)}


def train_steps(
    model: BiopsyModel,
    feats: Features,
    labels: np.ndarray,
    cfg: BiopsyConfig,
    *,
    steps: int,
    lr: float,
    label_smoothing: float,
    seed: int,
    device: torch.device,
    progress: bool | None = None,
    desc: str = "biopsy train",
) -> FitLog:
    """Train ``model``'s head (and trainable encoder part) for ``steps`` steps on cached rows.

    Args:
        feats: cached encoder-prefix outputs ``(N, V, ...)``; unreadable rows (``feats.ok`` False) are skipped.
        labels: ``(N,)`` 0/1.
        lr: learning rate of the head (the encoder suffix uses ``cfg.encoder_lr``).

    Raises:
        DataFormatError: no usable row.
    """
    task = StepsTask(model, feats, labels, cfg, steps, lr, label_smoothing, seed, device)
    torch.manual_seed(seed)
    model.train()
    t0 = time.perf_counter()
    result = TrainLoop(task, task.epochs, progress=progress, desc=desc, unit="step").run()
    model.eval()
    return FitLog(
        steps=steps,
        seconds=round(time.perf_counter() - t0, 3),
        n_train=int(task.ok.size),
        losses=[float(r["loss"]) for r in result.state.history],
    )


def predict_logits(
    model: BiopsyModel, feats: Features, device: torch.device, batch_size: int = 256, tta: bool = False
) -> np.ndarray:
    """Uncalibrated logits ``(N,)`` float64 of cached rows (view 0, or the mean over views with ``tta``);
    unreadable rows give NaN."""
    model.eval()
    out = np.full(len(feats.ok), np.nan, dtype=np.float64)
    if not feats.ok.any():
        return out
    n_views = int(feats.data.shape[1])
    with torch.inference_mode():
        for start in range(0, out.size, batch_size):
            x = feats.data[start : start + batch_size]
            views = range(n_views) if tta else range(1)
            logits = torch.stack([model.logits_from_cached(x[:, v].to(device)).float() for v in views]).mean(0)
            out[start : start + x.shape[0]] = logits.cpu().numpy()
    out[~feats.ok] = np.nan
    return out


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature T minimising the binary NLL of ``sigmoid(logits / T)`` (Guo et al., ICML 2017).

    Returns 1.0 when a class is missing or fewer than 2 cases are given; T is searched in [0.05, 20].
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    keep = np.isfinite(z)
    z, y = z[keep], y[keep]
    if z.size < 2 or y.min() == y.max():
        return 1.0

    def nll(log_t: float) -> float:
        s = z / math.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    res = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(res.x))


def choose_threshold(labels: np.ndarray, probs: np.ndarray, cfg: BiopsyConfig) -> tuple[float, str]:
    """Operating point on calibrated validation probabilities per ``cfg.operating_point``.

    Returns:
        ``(threshold, how)``: ``how`` is ``youden``, ``sensitivity``, ``fixed``, or ``fixed (fallback: ...)``
        when the validation split cannot define the chosen point.
    """
    y = np.asarray(labels)
    p = np.asarray(probs, dtype=np.float64)
    keep = np.isfinite(p)
    y, p = y[keep], p[keep]
    if cfg.operating_point == "fixed":
        return cfg.threshold, "fixed"
    thr = (
        (
            threshold_youden(y, p)
            if cfg.operating_point == "youden"
            else threshold_for_sensitivity(y, p, cfg.target_sensitivity)
        )
        if y.size
        else None
    )
    if thr is None:
        return cfg.threshold, "fixed (fallback: validation split lacks a class)"
    return thr, cfg.operating_point


def calibrate(
    model: BiopsyModel, val: Features, val_labels: np.ndarray, cfg: BiopsyConfig, device: torch.device
) -> dict[str, Any]:
    """Fit the temperature and the threshold on the validation split and store them on ``model``."""
    z = predict_logits(model, val, device)
    t = fit_temperature(z, val_labels) if cfg.calibration == "temperature" else 1.0
    model.temperature.fill_(t)
    probs = 1.0 / (1.0 + np.exp(-z / t))
    thr, how = choose_threshold(val_labels, probs, cfg)
    model.threshold = thr
    return {"temperature": t, "threshold": thr, "threshold_from": how, "n_val": int(np.isfinite(z).sum())}


def probabilities(model: BiopsyModel, feats: Features, device: torch.device, tta: bool = False) -> np.ndarray:
    """Calibrated probability of neoplastic ``(N,)`` float64 (NaN for unreadable images)."""
    z = predict_logits(model, feats, device, tta=tta)
    return 1.0 / (1.0 + np.exp(-z / float(model.temperature)))
