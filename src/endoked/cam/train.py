"""Training the CAM classifier's head on cached encoder features (the encoder stays frozen).

With a frozen encoder the features of every training image are computed once (plus the flipped view),
kept in memory as float16, and the head is trained on them for many epochs at negligible cost — on a CPU
this is the difference between minutes and hours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from endoked.cam.model import CamNet
from endoked.errors import DataFormatError
from endoked.features import frozen_forward
from endoked.training import (
    TrainLoop,
    TrainTask,
    allreduce_gradients,
    broadcast_parameters,
    dist_info,
    init_distributed,
    sum_over_ranks,
)

logger = logging.getLogger(__name__)

Normalizer = Callable[[torch.Tensor], torch.Tensor]


def to_input(image: np.ndarray, size: int) -> torch.Tensor:
    """``(3, size, size) float32`` in [0, 1] from an ``(H, W, 3) uint8`` RGB image (stretched to square)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataFormatError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    interp = cv2.INTER_AREA if max(image.shape[:2]) > size else cv2.INTER_LINEAR
    arr = cv2.resize(image, (size, size), interpolation=interp)
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)


def photometric_jitter(
    x: torch.Tensor,
    gen: torch.Generator,
    brightness: float = 0.35,
    contrast: float = 0.3,
    gamma: float = 0.35,
) -> torch.Tensor:
    """Random exposure of a ``(B, 3, H, W)`` batch in [0, 1], one draw per image: gamma ``exp(U(-g, g))``,
    contrast about the image's mean ``1 + U(-c, c)``, brightness ``1 + U(-b, b)``; clipped to [0, 1]."""
    n = x.shape[0]

    def draw(half: float) -> torch.Tensor:
        return (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * half

    y = x.clamp(0, 1).pow(torch.exp(draw(gamma)))
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - mean) * (1 + draw(contrast)) + mean
    return (y * (1 + draw(brightness))).clamp_(0, 1)


@dataclass
class FeatureCache:
    """The head's input for a set of images: encoder levels fused at the finest one (float16, on CPU).

    Attributes:
        fused: ``(N, sum C_l, h, w)`` (see :meth:`CamNet.fuse`).
        labels: ``(N,) float32`` 1 = polyp, 0 = polyp-free.
    """

    fused: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@torch.no_grad()
def cache_features(
    net: CamNet,
    images: Iterable[tuple[torch.Tensor, float]],
    normalize: Normalizer,
    batch_size: int = 16,
    flip: bool = True,
    device: torch.device | None = None,
    on_batch: Callable[[int], None] | None = None,
    jitter: int = 0,
    seed: int = 0,
) -> FeatureCache:
    """Run the frozen encoder over ``(image, label)`` pairs and keep the head's levels.

    Args:
        net: classifier whose encoder is used.
        images: pairs of a ``(3, S, S)`` float image in [0, 1] (all the same size) and its label.
        normalize: maps a ``(B, 3, S, S)`` batch in [0, 1] to the encoder's input normalisation.
        batch_size: images per encoder call.
        flip: also cache the horizontally flipped view (doubles the training set).
        device: where the encoder runs.
        on_batch: called with the number of images after each batch (progress).
        jitter: extra views per image with random brightness, contrast and gamma
            (:func:`photometric_jitter`), so that the head cannot separate the classes by a frame's overall
            exposure, which a centre's or a light source's look may carry, rather than by the polyp.
        seed: seed of the jitter.
    """
    device = device or torch.device("cpu")
    net.eval().to(device)
    fused: list[torch.Tensor] = []
    labels: list[float] = []
    batch: list[torch.Tensor] = []
    batch_labels: list[float] = []
    gen = torch.Generator().manual_seed(seed)

    def flush() -> None:
        if not batch:
            return
        raw = torch.stack(batch)
        x = normalize(raw.to(device))
        views = [x, torch.flip(x, dims=[3])] if flip else [x]
        for j in range(jitter):  # alternately flipped, so jitter and flip combine
            v = normalize(photometric_jitter(raw, gen).to(device))
            views.append(torch.flip(v, dims=[3]) if flip and j % 2 else v)
        for view in views:
            fused.append(frozen_forward(lambda v: net.fuse(net.encode(v)), view, torch.float16))
            labels.extend(batch_labels)
        if on_batch is not None:
            on_batch(len(batch))
        batch.clear()
        batch_labels.clear()

    for img, label in images:
        batch.append(img)
        batch_labels.append(float(label))
        if len(batch) >= batch_size:
            flush()
    flush()
    if not labels:
        raise DataFormatError("no training images for the CAM classifier")
    return FeatureCache(torch.cat(fused), torch.tensor(labels, dtype=torch.float32))


class HeadTask(TrainTask):
    """Training the CAM head on cached features as a :class:`endoked.training.TrainTask` (no validation,
    no checkpoint: the stage saves the classifier)."""

    def __init__(
        self,
        net: CamNet,
        cache: FeatureCache,
        epochs: int,
        lr: float,
        weight_decay: float,
        batch_size: int,
        seed: int,
        feature_dropout: float,
    ) -> None:
        labels = cache.labels
        n_pos = float(labels.sum())
        n_neg = float(len(labels) - n_pos)
        if n_pos == 0 or n_neg == 0:
            raise DataFormatError(
                f"the CAM classifier needs both classes; got {int(n_pos)} positives and "
                f"{int(n_neg)} negatives (check the mil selection)"
            )
        self.net, self.cache, self.batch_size, self.feature_dropout = net, cache, batch_size, feature_dropout
        self.pos_weight = torch.tensor(n_neg / n_pos)
        self.gen = torch.Generator().manual_seed(seed)
        self.params = [p for p in net.head.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay)
        steps = max(1, epochs * ((len(labels) + batch_size - 1) // batch_size))
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=steps)
        self.device = next(net.head.parameters()).device
        self.items_per_epoch = len(labels)

    def train_epoch(self, epoch: int, progress: Any) -> dict[str, Any]:
        net, labels = self.net, self.cache.labels
        world, rank, _ = dist_info()
        order = torch.randperm(len(labels), generator=self.gen)
        total, count = 0.0, 0
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            # under torchrun each rank takes every world-th sample of the batch, its loss weighted by its share
            idx = batch[rank::world] if world > 1 else batch
            self.opt.zero_grad(set_to_none=True)
            if len(idx):
                fused = self.cache.fused[idx].to(self.device).float()
                if self.feature_dropout > 0:
                    fused = F.dropout2d(fused, p=self.feature_dropout, training=True)
                logits = net.pooled(net.head(fused))
                y = labels[idx].to(self.device)
                loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=self.pos_weight.to(self.device))
                (loss * (len(idx) / len(batch))).backward()
                total += float(loss.detach()) * len(idx)
            allreduce_gradients(self.params)
            self.opt.step()
            self.sched.step()
            count += len(batch)
            progress.update(len(batch))
        return {"epoch": epoch + 1, "loss": sum_over_ranks(total) / max(count, 1)}


def fit_head(
    net: CamNet,
    cache: FeatureCache,
    epochs: int = 30,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
    feature_dropout: float = 0.1,
    progress: bool | None = False,
) -> list[float]:
    """Train the head on cached features with class-balanced BCE.

    Args:
        net: classifier (only its head is updated).
        cache: features and labels.
        epochs: passes over the cache.
        lr: AdamW learning rate (cosine decay to 0).
        weight_decay: AdamW weight decay.
        batch_size: cached samples per step.
        seed: shuffling seed.
        feature_dropout: channel dropout on the fused features during training.
        progress: progress bar (``None``: the process-wide setting).

    Returns:
        The mean training loss of every epoch (empty on ranks other than 0 under ``torchrun``).
    """
    init_distributed(next(net.head.parameters()).device)  # under torchrun: join the process group
    broadcast_parameters(net.head)
    task = HeadTask(net, cache, epochs, lr, weight_decay, batch_size, seed, feature_dropout)
    net.head.train()
    result = TrainLoop(task, epochs, progress=progress, desc="cam head", unit="sample").run()
    history = [float(r["loss"]) for r in result.state.history]
    net.head.eval()
    if history:  # under torchrun only rank 0 keeps the history
        logger.info("CAM head trained: %d samples, loss %.4f -> %.4f", len(cache), history[0], history[-1])
    return history
