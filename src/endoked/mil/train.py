"""Bag-distillation training with validation-AUROC checkpointing, early stopping and exact resume.

Every epoch draws its randomness (bag order, bag subsampling, dropout) from generators seeded by
``(seed, epoch)``, and ``last.pt`` holds the model, optimiser and early-stopping state after each epoch, so
a run resumed after an interruption ends with the same checkpoint as an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked.backbones.split import SplitEncoder
from endoked.device import autocast_for
from endoked.io import atomic_path
from endoked.mil.config import MilConfig
from endoked.mil.data import Bag
from endoked.mil.losses import bag_loss, dsmil_loss, pseudo_labels, student_loss
from endoked.mil.model import MilHeads
from endoked.progress import bar
from endoked.stats import auroc

logger = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Early-stopping bookkeeping, saved with every checkpoint."""

    epoch: int = -1  # last finished epoch
    best_epoch: int = -1
    best_auroc: float = -math.inf
    best_loss: float = math.inf
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def _bag_rows(bag: Bag, cap: int | None, gen: torch.Generator | None) -> torch.Tensor:
    items = torch.as_tensor(bag.items, dtype=torch.long)
    if cap is not None and len(items) > cap:
        items = items[torch.randperm(len(items), generator=gen)[:cap]].sort().values
    return items


@dataclass
class BatchOutput:
    """Forward pass of B padded bags: losses' inputs and bag scores."""

    teacher_loss: torch.Tensor  # () mean over bags of ABMIL + DSMIL losses
    student_logits: torch.Tensor  # (B, N)
    targets: torch.Tensor  # (B, N) pseudo labels
    positive: torch.Tensor  # (B, N) bool: instance of a positive bag
    mask: torch.Tensor  # (B, N) bool: real instance
    bag_scores: torch.Tensor  # (B,) detached


def batch_forward(heads: MilHeads, encoder: SplitEncoder, data: torch.Tensor, rows: Sequence[torch.Tensor],
                  labels: Sequence[int], device: torch.device, amp: bool) -> BatchOutput:
    """B bags (row indices into ``data``) through the encoder suffix and the heads, padded to the largest.

    The bag score is the mean of the teachers' bag probability (DSMIL: mean of its bag and max-instance
    streams) and the student's max instance probability.
    """
    sizes = [len(r) for r in rows]
    x = data[torch.cat(list(rows))].to(device, non_blocking=True)
    with autocast_for(device, amp):
        feats = encoder.suffix(x).float()
    padded = torch.nn.utils.rnn.pad_sequence(list(torch.split(feats, sizes)), batch_first=True)  # (B, N, F)
    mask = torch.zeros(padded.shape[:2], dtype=torch.bool, device=device)
    for i, n in enumerate(sizes):
        mask[i, :n] = True
    with autocast_for(device, amp):
        ab, ds, stu = heads(padded, mask)
    ab = type(ab)(ab.bag_logit.float(), ab.attention.float())
    ds = type(ds)(ds.bag_logit.float(), ds.attention.float(),
                  None if ds.instance_logits is None else ds.instance_logits.float())
    y = torch.as_tensor(list(labels), dtype=torch.float32, device=device)
    t_loss = bag_loss(ab.bag_logit, y) + dsmil_loss(ds, y, mask)
    targets = pseudo_labels(ab.attention, ds.attention, y, mask)
    stu = stu.float()
    inst = ds.instance_logits if ds.instance_logits is not None else ds.bag_logit.unsqueeze(1)
    p_ds = 0.5 * (torch.sigmoid(ds.bag_logit) + torch.sigmoid(inst.max(dim=1).values))
    p_student = torch.sigmoid(stu.masked_fill(~mask, float("-inf"))).max(dim=1).values
    scores = 0.5 * (0.5 * (torch.sigmoid(ab.bag_logit) + p_ds) + p_student)
    positive = (y > 0).unsqueeze(1).expand_as(mask)
    return BatchOutput(t_loss, stu, targets, positive, mask, scores.detach())


def _step_loss(out: BatchOutput, cfg: MilConfig, student_on: bool) -> torch.Tensor:
    loss = out.teacher_loss
    if student_on:
        loss = loss + cfg.student_weight * student_loss(out.student_logits, out.targets, out.positive,
                                                        cfg.student_positive_weight, out.mask)
    return loss


def evaluate_bags(heads: MilHeads, encoder: SplitEncoder, data: torch.Tensor, bags: Sequence[Bag],
                  cfg: MilConfig, device: torch.device, student_on: bool) -> dict[str, float]:
    """Validation bag AUROC and mean loss (all images of each bag, no subsampling)."""
    heads.eval()
    encoder.eval()
    scores: list[float] = []
    losses: list[float] = []
    with torch.no_grad():
        for start in range(0, len(bags), cfg.bags_per_step):
            chunk = bags[start:start + cfg.bags_per_step]
            out = batch_forward(heads, encoder, data, [_bag_rows(b, None, None) for b in chunk],
                                [b.label for b in chunk], device, cfg.amp)
            scores.extend(out.bag_scores.cpu().tolist())
            losses.append(float(_step_loss(out, cfg, student_on)) * len(chunk))
    labels = [b.label for b in bags]
    mean_loss = sum(losses) / len(bags) if bags else math.nan
    return {"val_bag_auroc": auroc(labels, scores), "val_loss": mean_loss}


def _save(path: Path, obj: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _encoder_state(encoder: SplitEncoder) -> dict[str, torch.Tensor]:
    return {} if encoder.frozen else {k: v.detach().clone() for k, v in encoder.model.state_dict().items()}


def train_mil(heads: MilHeads, encoder: SplitEncoder, data: torch.Tensor, train_bags: Sequence[Bag],
              val_bags: Sequence[Bag], cfg: MilConfig, *, seed: int, device: torch.device,
              checkpoint_dir: Path | None = None, progress: bool | None = None,
              on_epoch_end: Callable[[TrainState], None] | None = None) -> TrainState:
    """Train heads (and the encoder's trainable part) by bag distillation.

    Args:
        heads, encoder: the model (moved to ``device`` here).
        data: ``(M, ...)`` cached encoder-prefix outputs; bags index its rows.
        train_bags, val_bags: labelled bags (labels 0/1); validation bags are never trained on.
        cfg: the stage config.
        seed: run seed.
        device: training device.
        checkpoint_dir: where ``last.pt`` (resume) and ``best.pt`` (best validation bag AUROC) are kept; an
            existing ``last.pt`` is resumed from. Without it, the best weights are kept in memory.
        progress: progress bar switch.
        on_epoch_end: called after each epoch's checkpoint is written.

    Returns:
        The final :class:`TrainState`; ``heads``/``encoder`` hold the best epoch's weights.
    """
    heads.to(device)
    encoder.to(device)
    groups = [{"params": list(heads.parameters()), "lr": cfg.lr}]
    enc_params = encoder.trainable_parameters()
    if enc_params:
        groups.append({"params": enc_params, "lr": cfg.encoder_lr})
    optim = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp)
    state = TrainState()
    best: dict[str, Any] | None = None
    last_path = checkpoint_dir / "last.pt" if checkpoint_dir else None
    best_path = checkpoint_dir / "best.pt" if checkpoint_dir else None
    if last_path is not None and last_path.is_file():
        ck = torch.load(last_path, map_location="cpu", weights_only=True)
        heads.load_state_dict(ck["heads"])
        if ck["encoder"]:
            encoder.model.load_state_dict(ck["encoder"])
        optim.load_state_dict(ck["optim"])
        scaler.load_state_dict(ck["scaler"])
        state = TrainState(**ck["state"])
        logger.info("mil: resuming after epoch %d (best val bag AUROC %.4f at epoch %d)", state.epoch,
                    state.best_auroc, state.best_epoch)
    n_steps = cfg.epochs * len(train_bags)
    with bar(n_steps, desc="mil train", unit="bag", enabled=progress) as pbar:
        pbar.update((state.epoch + 1) * len(train_bags))
        for epoch in range(state.epoch + 1, cfg.epochs):
            if state.stopped_early:
                break
            gen = _epoch_generator(seed, epoch)
            torch.manual_seed(seed * 1_000_003 + epoch + 17)
            student_on = epoch >= cfg.student_warmup_epochs and cfg.student_weight > 0
            train_loss = _train_epoch(heads, encoder, data, train_bags, cfg, device, gen, optim, scaler,
                                      student_on, pbar)
            metrics = evaluate_bags(heads, encoder, data, val_bags, cfg, device, student_on)
            state.epoch = epoch
            state.history.append({"epoch": epoch, "train_loss": train_loss, **metrics})
            auc, vloss = metrics["val_bag_auroc"], metrics["val_loss"]
            auc_cmp = -math.inf if math.isnan(auc) else auc
            eligible = epoch >= cfg.student_warmup_epochs or cfg.student_weight == 0
            improved = eligible and (auc_cmp > state.best_auroc + 1e-9 or
                                     (abs(auc_cmp - state.best_auroc) <= 1e-9 and vloss < state.best_loss - 1e-4))
            if improved:
                state.best_epoch, state.best_auroc, state.best_loss, state.bad_epochs = epoch, auc_cmp, vloss, 0
                best = {"heads": {k: v.detach().clone() for k, v in heads.state_dict().items()},
                        "encoder": _encoder_state(encoder), "epoch": epoch, "val_bag_auroc": auc, "val_loss": vloss}
                if best_path is not None:
                    _save(best_path, best)
            elif eligible:
                state.bad_epochs += 1
                state.stopped_early = state.bad_epochs >= cfg.patience
            logger.info("mil epoch %d: train loss %.4f, val bag AUROC %.4f, val loss %.4f%s", epoch, train_loss,
                        auc, vloss, " (best)" if improved else "")
            if last_path is not None:
                _save(last_path, {"heads": heads.state_dict(), "encoder": _encoder_state(encoder),
                                  "optim": optim.state_dict(), "scaler": scaler.state_dict(),
                                  "state": asdict(state)})
            if on_epoch_end is not None:
                on_epoch_end(state)
            if state.stopped_early:
                logger.info("mil: early stop after epoch %d (best epoch %d)", epoch, state.best_epoch)
                break
    if best is None and best_path is not None and best_path.is_file():
        best = torch.load(best_path, map_location="cpu", weights_only=True)
    if best is not None:
        heads.load_state_dict(best["heads"])
        if best["encoder"]:
            encoder.model.load_state_dict(best["encoder"])
    return state


def _train_epoch(heads: MilHeads, encoder: SplitEncoder, data: torch.Tensor, bags: Sequence[Bag],
                 cfg: MilConfig, device: torch.device, gen: torch.Generator, optim: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, student_on: bool, pbar: Any) -> float:
    heads.train()
    encoder.train()
    order = torch.randperm(len(bags), generator=gen).tolist()
    total, n_steps = 0.0, 0
    for start in range(0, len(order), cfg.bags_per_step):
        chunk = [bags[i] for i in order[start:start + cfg.bags_per_step]]
        rows = [_bag_rows(b, cfg.max_images_per_bag, gen) for b in chunk]
        out = batch_forward(heads, encoder, data, rows, [b.label for b in chunk], device, cfg.amp)
        loss = _step_loss(out, cfg, student_on)
        optim.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()
        total += float(loss.detach())
        n_steps += 1
        pbar.update(len(chunk))
    return total / max(n_steps, 1)


def score_rows(heads: MilHeads, encoder: SplitEncoder, data: torch.Tensor, cfg: MilConfig,
               device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Image scores ``(M,)`` float32 in [0, 1] for every cached row (images scored independently)."""
    heads.to(device).eval()
    encoder.to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, data.shape[0], batch_size):
            with autocast_for(device, cfg.amp):
                feats = encoder.suffix(data[start:start + batch_size].to(device))
            out.append(heads.score_instances(feats.float(), cfg.score_source).float().cpu())
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(0, dtype=np.float32)
