"""Training on cached encoder outputs, temperature scaling and the operating point.

One step draws ``batch_size`` cached rows (class-balanced when ``class_balance='sampler'``) and one random
view (original / flips) of each, runs the trainable encoder suffix and the head, and minimises binary
cross-entropy (AdamW, cosine learning-rate decay over the step budget). All randomness comes from
generators seeded by ``seed``, so a run is repeatable.

Fine-tuning a pre-trained model (:func:`finetune`, the one home of the fine-tuning recipe) can

* anchor the trainable weights to their starting values ``w0`` (L2-SP, Li et al., ICML 2018): the loss gains
  ``alpha / 2 * ||w - w0||^2`` (``alpha = cfg.finetune_anchor``) and those weights get no weight decay towards 0;
* choose between the starting and the fine-tuned weights on the validation split (``cfg.finetune_select``):
  keep the fine-tuned weights only when they are better there, or interpolate ``(1 - a) w0 + a w_ft``
  (WiSE-FT, Wortsman et al., CVPR 2022) with ``a`` chosen on validation; ties go to the starting weights, so
  the kept model is never worse than the pre-trained one on the validation criterion.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch.nn import functional as F

from endoked.biopsy.config import BiopsyConfig, FinetuneSelect, SelectMetric
from endoked.biopsy.features import Features
from endoked.biopsy.metrics import threshold_for_sensitivity, threshold_youden
from endoked.biopsy.model import BiopsyModel
from endoked.device import autocast_for
from endoked.errors import DataFormatError
from endoked.stats import auroc
from endoked.training import TrainLoop, TrainTask

logger = logging.getLogger(__name__)

INTERPOLATION_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Values of ``a`` in ``(1 - a) * w0 + a * w_ft`` tried by ``finetune_select='interpolate'``."""


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
    (``max(1, steps // 10)`` steps, the last one possibly shorter) and records its mean loss.

    With ``anchor > 0`` every trainable weight is pulled towards its value at the start (L2-SP): the loss gains
    ``anchor / 2 * sum ||w - w0||^2`` and the optimiser applies no weight decay; with ``anchor == 0`` training is
    plain AdamW with ``cfg.weight_decay``."""

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
        anchor: float = 0.0,
    ) -> None:
        if anchor < 0:
            raise ValueError(f"anchor must be >= 0, got {anchor}")
        self.ok = np.flatnonzero(feats.ok)
        if self.ok.size == 0:
            raise DataFormatError("no readable training image")
        self.y = np.asarray(labels, dtype=np.int64)[self.ok]
        self.model, self.data, self.cfg, self.steps, self.device = model, feats.data, cfg, steps, device
        self.label_smoothing = label_smoothing
        head_params = list(model.head.parameters())
        params = [{"params": head_params, "lr": lr}]
        enc_params = model.encoder.trainable_parameters()
        if enc_params:
            params.append({"params": enc_params, "lr": cfg.encoder_lr})
        self.anchor = float(anchor)
        self.anchored: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        if self.anchor > 0:
            self.anchored = [(p, p.detach().clone()) for p in head_params + enc_params]
        self.opt = torch.optim.AdamW(params, weight_decay=0.0 if self.anchor > 0 else cfg.weight_decay)
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
            if self.anchored:
                drift = torch.stack([(p.float() - p0.float()).pow(2).sum() for p, p0 in self.anchored]).sum()
                loss = loss + 0.5 * self.anchor * drift
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
    anchor: float = 0.0,
) -> FitLog:
    """Train ``model``'s head (and trainable encoder part) for ``steps`` steps on cached rows.

    Args:
        feats: cached encoder-prefix outputs ``(N, V, ...)``; unreadable rows (``feats.ok`` False) are skipped.
        labels: ``(N,)`` 0/1.
        lr: learning rate of the head (the encoder suffix uses ``cfg.encoder_lr``).
        anchor: L2-SP strength (see :class:`StepsTask`); 0 trains with plain weight decay. The recorded losses
            include the penalty.

    Raises:
        DataFormatError: no usable row.
    """
    task = StepsTask(model, feats, labels, cfg, steps, lr, label_smoothing, seed, device, anchor)
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


def _state(model: BiopsyModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def interpolate_state(
    start: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """Weights ``(1 - alpha) * start + alpha * tuned`` (floating-point entries; counters come from ``tuned``);
    ``alpha`` 0 and 1 give exact copies of ``start`` and ``tuned``."""
    if alpha == 0.0:
        return {k: v.clone() for k, v in start.items()}
    if alpha == 1.0:
        return {k: v.clone() for k, v in tuned.items()}
    return {k: torch.lerp(start[k], v, alpha) if v.is_floating_point() else v.clone() for k, v in tuned.items()}


def select_score(logits: np.ndarray, labels: np.ndarray, metric: SelectMetric) -> float:
    """Validation figure of one candidate: ``auroc`` (higher is better), or ``log_loss``, the binary log-loss of
    ``sigmoid(logits / T)`` with ``T`` fitted on the same images (:func:`fit_temperature`; lower is better).
    NaN when undefined (no image; one class for AUROC)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    keep = np.isfinite(z)
    z, y = z[keep], y[keep]
    if z.size == 0:
        return float("nan")
    if metric == "auroc":
        return auroc(y.astype(np.int64), z)
    s = z / fit_temperature(z, y)
    return float(np.mean(np.logaddexp(0.0, s) - y * s))


def select_weights(
    model: BiopsyModel,
    start: dict[str, torch.Tensor],
    val: Features,
    val_labels: np.ndarray,
    select: FinetuneSelect,
    metric: SelectMetric,
    device: torch.device,
) -> dict[str, Any]:
    """Give the fine-tuned ``model`` the weights that ``select`` keeps, judged on the validation images.

    Candidates are ``(1 - a) * w0 + a * w_ft`` (``w0``: ``start``, the state before fine-tuning; ``w_ft``:
    ``model``'s state): ``last``: ``a = 1`` only (nothing is scored); ``validation``: ``a`` in {0, 1};
    ``interpolate``: ``a`` in :data:`INTERPOLATION_GRID`. The candidate with the best ``metric``
    (:func:`select_score`) wins; ties keep the smallest ``a``, and so does a split on which the criterion is
    undefined (no readable image, a single class for AUROC): the pre-trained weights are kept unless a
    fine-tuned candidate is strictly better on validation.

    Returns:
        ``{"select", "metric", "alpha", "kept" ("pretrained" | "finetuned" | "interpolated"), "scores"
        ({"a": figure or None}, the validation figure of each candidate), "n_val"}``, and ``"note"`` when the
        criterion was undefined.
    """
    info: dict[str, Any] = {"select": select, "metric": metric if select != "last" else None}
    if select == "last":
        return {**info, "alpha": 1.0, "kept": "finetuned", "scores": {}, "n_val": int(val.ok.sum())}
    y = np.asarray(val_labels)
    tuned = _state(model)
    grid = (0.0, 1.0) if select == "validation" else INTERPOLATION_GRID
    sign = 1.0 if metric == "auroc" else -1.0
    scores: dict[float, float] = {}
    best_a, best = 0.0, -math.inf
    for a in grid:
        model.load_state_dict(interpolate_state(start, tuned, a))
        score = select_score(predict_logits(model, val, device), y, metric)
        scores[a] = score
        if np.isfinite(score) and sign * score > best + 1e-12:
            best_a, best = a, sign * score
    model.load_state_dict(interpolate_state(start, tuned, best_a))
    model.eval()
    kept = "pretrained" if best_a == 0.0 else "finetuned" if best_a == 1.0 else "interpolated"
    info.update(
        alpha=best_a,
        kept=kept,
        scores={f"{a:g}": (v if np.isfinite(v) else None) for a, v in scores.items()},
        n_val=int(val.ok.sum()),
    )
    if not any(np.isfinite(v) for v in scores.values()):
        info["note"] = f"validation {metric} undefined (no readable image or a single class): pre-trained kept"
    logger.info(
        "biopsy fine-tune: %s on validation %s over %d images kept the %s weights (a = %.2f; %s)",
        select,
        metric,
        info["n_val"],
        kept,
        best_a,
        ", ".join(f"a={a:g}: {v:.4f}" for a, v in scores.items()),
    )
    return info


def finetune(
    model: BiopsyModel,
    feats: Features,
    labels: np.ndarray,
    val: Features,
    val_labels: np.ndarray,
    cfg: BiopsyConfig,
    *,
    pretrained: bool,
    seed: int,
    device: torch.device,
    progress: bool | None = None,
    desc: str = "biopsy fine-tune",
    rules: Sequence[tuple[FinetuneSelect, SelectMetric]] | None = None,
) -> tuple[FitLog, list[tuple[BiopsyModel, dict[str, Any]]]]:
    """Fine-tune ``model`` in place with ``cfg``'s recipe, then keep the weights each selection rule chooses on
    the validation split (:func:`select_weights`).

    From a pre-trained model: ``cfg.finetune_steps`` steps at ``cfg.finetune_lr`` with the L2-SP anchor
    ``cfg.finetune_anchor``, then the selection. From a fresh head (``pretrained`` false): the same steps at
    ``cfg.lr``, no anchor, and the last weights whatever the rule (there is nothing to fall back to).

    Args:
        feats, labels: training rows (cached encoder outputs) and their 0/1 labels.
        val, val_labels: validation rows and labels (the selection's evidence).
        rules: ``(finetune_select, finetune_select_metric)`` pairs; default ``cfg``'s pair. The first rule's
            choice is applied to ``model`` itself, every further rule to a copy of the fine-tuned model, so one
            training run serves several rules.

    Returns:
        ``(training log, [(model, selection info of :func:`select_weights`) per rule])``.
    """
    pairs = list(rules) if rules is not None else [(cfg.finetune_select, cfg.finetune_select_metric)]
    if not pairs:
        raise ValueError("rules must name at least one (select, metric) pair")
    start = _state(model) if pretrained and any(sel != "last" for sel, _ in pairs) else None
    log = train_steps(
        model,
        feats,
        labels,
        cfg,
        steps=cfg.finetune_steps,
        lr=cfg.finetune_lr if pretrained else cfg.lr,
        label_smoothing=cfg.label_smoothing,
        seed=seed,
        device=device,
        progress=progress,
        desc=desc,
        anchor=cfg.finetune_anchor if pretrained else 0.0,
    )
    targets = [model] + [copy.deepcopy(model) for _ in pairs[1:]]
    out: list[tuple[BiopsyModel, dict[str, Any]]] = []
    for target, (sel, metric) in zip(targets, pairs, strict=True):
        if start is None or sel == "last":
            info: dict[str, Any] = select_weights(target, {}, val, val_labels, "last", metric, device)
            if not pretrained:
                info["note"] = "trained from a fresh head: the last weights are kept"
        else:
            info = select_weights(target, start, val, val_labels, sel, metric, device)
        info["anchor"] = cfg.finetune_anchor if pretrained else 0.0
        out.append((target, info))
    return log, out
