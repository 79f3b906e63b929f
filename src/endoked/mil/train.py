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
from endoked.mil.config import MilConfig
from endoked.mil.data import Bag
from endoked.mil.losses import bag_loss, dsmil_loss, pseudo_labels, student_loss
from endoked.mil.model import MilHeads
from endoked.stats import auroc
from endoked.training import (
    LoopState,
    TrainLoop,
    TrainTask,
    Verdict,
    allreduce_gradients,
    broadcast_parameters,
    dist_info,
    init_distributed,
    rank_slice,
    sum_over_ranks,
)

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


def batch_forward(
    heads: MilHeads,
    encoder: SplitEncoder,
    data: torch.Tensor,
    rows: Sequence[torch.Tensor],
    labels: Sequence[int],
    device: torch.device,
    amp: bool,
) -> BatchOutput:
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
    ds = type(ds)(
        ds.bag_logit.float(), ds.attention.float(), None if ds.instance_logits is None else ds.instance_logits.float()
    )
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
        loss = loss + cfg.student_weight * student_loss(
            out.student_logits, out.targets, out.positive, cfg.student_positive_weight, out.mask
        )
    return loss


def evaluate_bags(
    heads: MilHeads,
    encoder: SplitEncoder,
    data: torch.Tensor,
    bags: Sequence[Bag],
    cfg: MilConfig,
    device: torch.device,
    student_on: bool,
) -> dict[str, float]:
    """Validation bag AUROC and mean loss (all images of each bag, no subsampling)."""
    heads.eval()
    encoder.eval()
    scores: list[float] = []
    losses: list[float] = []
    with torch.no_grad():
        for start in range(0, len(bags), cfg.bags_per_step):
            chunk = bags[start : start + cfg.bags_per_step]
            out = batch_forward(
                heads,
                encoder,
                data,
                [_bag_rows(b, None, None) for b in chunk],
                [b.label for b in chunk],
                device,
                cfg.amp,
            )
            scores.extend(out.bag_scores.cpu().tolist())
            losses.append(float(_step_loss(out, cfg, student_on)) * len(chunk))
    labels = [b.label for b in bags]
    mean_loss = sum(losses) / len(bags) if bags else math.nan
    return {"val_bag_auroc": auroc(labels, scores), "val_loss": mean_loss}


def _encoder_state(encoder: SplitEncoder) -> dict[str, torch.Tensor]:
    return {} if encoder.frozen else {k: v.detach().clone() for k, v in encoder.model.state_dict().items()}


class MilTask(TrainTask):
    """Bag distillation as a :class:`endoked.training.TrainTask` (``last.pt``/``best.pt`` keep their layout:
    ``heads``, ``encoder``, ``optim``, ``scaler``, ``state``; and ``heads``, ``encoder``, ``epoch``,
    ``val_bag_auroc``, ``val_loss``)."""

    validates = True

    def __init__(
        self,
        heads: MilHeads,
        encoder: SplitEncoder,
        data: torch.Tensor,
        train_bags: Sequence[Bag],
        val_bags: Sequence[Bag],
        cfg: MilConfig,
        seed: int,
        device: torch.device,
    ) -> None:
        self.heads, self.encoder, self.data, self.cfg = heads, encoder, data, cfg
        self.seed, self.device = seed, device
        self.train_bags, self.val_bags = train_bags, val_bags
        groups = [{"params": list(heads.parameters()), "lr": cfg.lr}]
        enc_params = encoder.trainable_parameters()
        if enc_params:
            groups.append({"params": enc_params, "lr": cfg.encoder_lr})
        self.optim = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp)
        self.items_per_epoch = len(train_bags)
        self.best_loss, self.bad_epochs = math.inf, 0

    def student_on(self, epoch: int) -> bool:
        return epoch >= self.cfg.student_warmup_epochs and self.cfg.student_weight > 0

    def train_epoch(self, epoch: int, progress: Any) -> dict[str, Any]:
        gen = _epoch_generator(self.seed, epoch)
        torch.manual_seed(self.seed * 1_000_003 + epoch + 17)
        loss = _train_epoch(
            self.heads,
            self.encoder,
            self.data,
            self.train_bags,
            self.cfg,
            self.device,
            gen,
            self.optim,
            self.scaler,
            self.student_on(epoch),
            progress,
        )
        return {"epoch": epoch, "train_loss": loss}

    def validate(self, epoch: int, final: bool) -> dict[str, Any]:
        return evaluate_bags(
            self.heads, self.encoder, self.data, self.val_bags, self.cfg, self.device, self.student_on(epoch)
        )

    def judge(self, state: LoopState, epoch: int, val: dict[str, Any] | None) -> Verdict:
        """Best validation bag AUROC (ties: lower loss) once the student is on; patience-based early stop."""
        assert val is not None
        auc, vloss = val["val_bag_auroc"], val["val_loss"]
        auc_cmp = -math.inf if math.isnan(auc) else auc
        best = state.best_metric
        eligible = epoch >= self.cfg.student_warmup_epochs or self.cfg.student_weight == 0
        improved = eligible and (
            auc_cmp > best + 1e-9 or (abs(auc_cmp - best) <= 1e-9 and vloss < self.best_loss - 1e-4)
        )
        if improved:
            self.best_loss, self.bad_epochs = vloss, 0
        elif eligible:
            self.bad_epochs += 1
        return Verdict(improved, auc_cmp, stop=not improved and eligible and self.bad_epochs >= self.cfg.patience)

    def best_checkpoint(self, state: LoopState, epoch: int, val: dict[str, Any] | None) -> dict[str, Any]:
        assert val is not None
        return {
            "heads": {k: v.detach().clone() for k, v in self.heads.state_dict().items()},
            "encoder": _encoder_state(self.encoder),
            "epoch": epoch,
            "val_bag_auroc": val["val_bag_auroc"],
            "val_loss": val["val_loss"],
        }

    def train_state(self, state: LoopState) -> TrainState:
        """The loop state in the stage's early-stopping form (0-based epochs, -1 for none)."""
        return TrainState(
            epoch=state.epoch - 1,
            best_epoch=state.best_epoch - 1,
            best_auroc=state.best_metric,
            best_loss=self.best_loss,
            bad_epochs=self.bad_epochs,
            stopped_early=state.stopped == "early",
            history=state.history,
        )

    def state_dict(self, state: LoopState) -> dict[str, Any]:
        return {
            "heads": self.heads.state_dict(),
            "encoder": _encoder_state(self.encoder),
            "optim": self.optim.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": asdict(self.train_state(state)),
        }

    def load_state_dict(self, content: dict[str, Any]) -> LoopState:
        self.heads.load_state_dict(content["heads"])
        if content["encoder"]:
            self.encoder.model.load_state_dict(content["encoder"])
        self.optim.load_state_dict(content["optim"])
        self.scaler.load_state_dict(content["scaler"])
        ts = TrainState(**content["state"])
        self.best_loss, self.bad_epochs = ts.best_loss, ts.bad_epochs
        return LoopState(
            epoch=ts.epoch + 1,
            best_epoch=ts.best_epoch + 1,
            best_metric=ts.best_auroc,
            history=list(ts.history),
            stopped="early" if ts.stopped_early else "",
        )


def train_mil(
    heads: MilHeads,
    encoder: SplitEncoder,
    data: torch.Tensor,
    train_bags: Sequence[Bag],
    val_bags: Sequence[Bag],
    cfg: MilConfig,
    *,
    seed: int,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    progress: bool | None = None,
    on_epoch_end: Callable[[TrainState], None] | None = None,
) -> TrainState:
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
    device = init_distributed(device)  # under torchrun: join the process group (DDP over bags)
    heads.to(device)
    encoder.to(device)
    broadcast_parameters(heads, encoder.model)
    task = MilTask(heads, encoder, data, train_bags, val_bags, cfg, seed, device)
    hook = (lambda state: on_epoch_end(task.train_state(state))) if on_epoch_end is not None else None
    result = TrainLoop(
        task, cfg.epochs, checkpoint_dir, progress=progress, desc="mil train", unit="bag", on_epoch_end=hook
    ).run()
    if result.best is not None:
        heads.load_state_dict(result.best["heads"])
        if result.best["encoder"]:
            encoder.model.load_state_dict(result.best["encoder"])
    return task.train_state(result.state)


def _train_epoch(
    heads: MilHeads,
    encoder: SplitEncoder,
    data: torch.Tensor,
    bags: Sequence[Bag],
    cfg: MilConfig,
    device: torch.device,
    gen: torch.Generator,
    optim: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    student_on: bool,
    pbar: Any,
) -> float:
    heads.train()
    encoder.train()
    world, rank, _ = dist_info()
    params = [p for g in optim.param_groups for p in g["params"]]
    order = torch.randperm(len(bags), generator=gen).tolist()
    total, n_steps = 0.0, 0
    for start in range(0, len(order), cfg.bags_per_step):
        chunk = [bags[i] for i in order[start : start + cfg.bags_per_step]]
        rows = [_bag_rows(b, cfg.max_images_per_bag, gen) for b in chunk]  # every rank draws the same rows
        # under torchrun each rank takes every world-th bag of the step, its loss weighted by its share
        mine = rank_slice(list(range(len(chunk))), world, rank)
        optim.zero_grad(set_to_none=True)
        if mine:
            out = batch_forward(
                heads, encoder, data, [rows[i] for i in mine], [chunk[i].label for i in mine], device, cfg.amp
            )
            loss = _step_loss(out, cfg, student_on) * (len(mine) / len(chunk))
            scaler.scale(loss).backward()
            total += float(loss.detach())
        allreduce_gradients(params)
        scaler.step(optim)
        scaler.update()
        n_steps += 1
        pbar.update(len(chunk))
    return sum_over_ranks(total) / max(n_steps, 1)


def score_rows(
    heads: MilHeads,
    encoder: SplitEncoder,
    data: torch.Tensor,
    cfg: MilConfig,
    device: torch.device,
    batch_size: int = 256,
) -> np.ndarray:
    """Image scores ``(M,)`` float32 in [0, 1] for every cached row (images scored independently)."""
    heads.to(device).eval()
    encoder.to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, data.shape[0], batch_size):
            with autocast_for(device, cfg.amp):
                feats = encoder.suffix(data[start : start + batch_size].to(device))
            out.append(heads.score_instances(feats.float(), cfg.score_source).float().cpu())
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(0, dtype=np.float32)
