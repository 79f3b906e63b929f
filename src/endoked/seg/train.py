"""Training loop of the segmentation network: one code path for real masks and pseudo masks.

Everything random is drawn from generators seeded by ``(seed, epoch)``, and the full training state is
saved after every epoch (``last.pt``), so an interrupted run resumed from its folder gives the same
checkpoint as an uninterrupted one. The checkpoint kept (``model.pt``) is the epoch with the best
validation mean Dice on a split of the *training pool* (never a test set).

Runs in one process by default; launched with ``torchrun`` (``WORLD_SIZE > 1``) it trains with
DistributedDataParallel, each process taking its share of every epoch's batches.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from endoked.backbones import normalize_images
from endoked.device import autocast_for
from endoked.errors import ConfigError
from endoked.features import frozen_forward, progress_bar
from endoked.io import atomic_write_json, sha256_json
from endoked.seg.checkpoint import (
    build_model,
    checkpoint_decoder,
    checkpoint_dict,
    checkpoint_network,
    load_weights,
    read_checkpoint,
    unwrap,
)
from endoked.seg.config import SegConfig
from endoked.seg.data import PairStore, augment, scaled_size
from endoked.seg.loss import structure_loss
from endoked.seg.model import PolypPVT
from endoked.seg.plots import write_curve
from endoked.seg.validate import validate
from endoked.training import (
    LoopState,
    TrainLoop,
    TrainTask,
    dist_info,
    epoch_generator,
    init_distributed,
    optimizer_step,
    wrap_distributed,
)

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`.

    Attributes:
        checkpoint: ``model.pt`` (best validation epoch, or the last one without validation).
        history: one record per epoch (``epoch``, ``lr``, ``loss``, ``seconds``, validation figures).
        best_epoch: epoch of the checkpoint (1-based).
        best_val: validation figures of that epoch (empty without validation).
        n_train, n_val: images used.
        stopped_early: the ``max_minutes`` budget ended training before ``epochs``.
    """

    checkpoint: Path
    history: list[dict[str, Any]]
    best_epoch: int
    best_val: dict[str, float]
    n_train: int
    n_val: int
    stopped_early: bool = False
    seconds: float = 0.0


def lr_factor(step: int, total_steps: int, warmup_steps: int, steps_per_epoch: int, cfg: SegConfig) -> float:
    """Multiplier of the peak LR at optimizer step ``step`` (0-based), computed afresh at every step.

    Linear warm-up from ``1 / (warmup_steps + 1)`` to 1 over ``warmup_steps``; then cosine or poly decay to
    ``min_lr_ratio`` at ``total_steps``, or ``step_rate ** (epoch // step_epochs)`` for the step schedule.
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if cfg.optim.schedule == "step":
        return float(cfg.optim.step_rate ** ((step // max(1, steps_per_epoch)) // cfg.optim.step_epochs))
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    floor = cfg.optim.min_lr_ratio
    if cfg.optim.schedule == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    return floor + (1.0 - floor) * (1.0 - t) ** cfg.optim.poly_power


def _epoch_generator(seed: int, epoch: int, salt: int = 0) -> torch.Generator:
    return epoch_generator(seed, epoch, salt)


def _augment_args(cfg: SegConfig) -> dict[str, Any]:
    aug = cfg.augment
    return {
        "hflip": aug.hflip,
        "vflip": aug.vflip,
        "rotate90": aug.rotate90,
        "crop_scale": aug.crop_scale,
        "color_jitter": aug.color_jitter,
        "zoom_out": aug.zoom_out,
        "zoom_min": aug.zoom_min,
    }


class _CachedForward(nn.Module):
    """Calls :meth:`PolypPVT.forward_cached` through ``forward`` (so DDP can wrap it)."""

    def __init__(self, model: PolypPVT) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: list[torch.Tensor], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_cached(feats, size)


class FeatureCache:
    """Outputs of the frozen encoder stages for ``views`` augmented copies of every training image.

    View 0 is the image itself; the others are drawn with :func:`endoked.seg.data.augment` from a generator
    seeded by ``seed``. Features are stored as float16 on the CPU.
    """

    def __init__(
        self,
        model: PolypPVT,
        store: PairStore,
        indices: list[int],
        cfg: SegConfig,
        seed: int,
        device: torch.device,
        progress: bool = True,
    ) -> None:
        self.views = cfg.model.cache_views
        self.levels: list[torch.Tensor] = []
        self.masks = torch.empty(0)
        gen = _epoch_generator(seed, 0, salt=17)
        enc = model.encoder
        chunks: list[list[torch.Tensor]] = []
        mask_chunks: list[torch.Tensor] = []
        bs = max(1, cfg.predict.batch_size)

        def frozen(x: torch.Tensor) -> list[torch.Tensor]:
            with autocast_for(device, cfg.optim.amp):
                return list(enc.frozen_features(x))

        with progress_bar(len(indices) * self.views, "caching frozen encoder features", progress, unit="view") as pbar:
            for start in range(0, len(indices), bs):
                idx = indices[start : start + bs]
                imgs_u8, masks_u8 = store.batch(idx)
                imgs, masks = imgs_u8.float() / 255.0, masks_u8.float() / 255.0
                for v in range(self.views):
                    if v == 0:
                        vi, vm = imgs, masks
                    else:
                        vi, vm = augment(imgs, masks, gen, **_augment_args(cfg))
                    x = normalize_images(vi, enc.name).to(device)
                    chunks.append(frozen_forward(frozen, x, torch.float16))
                    mask_chunks.append((vm * 255).round().to(torch.uint8))
                    pbar.update(len(idx))
        # rows are ordered (chunk, view, image); keep a map from (position in indices, view) to row
        self.row = np.zeros((len(indices), self.views), dtype=np.int64)
        r = 0
        for start in range(0, len(indices), bs):
            n = len(indices[start : start + bs])
            for v in range(self.views):
                self.row[start : start + n, v] = np.arange(r, r + n)
                r += n
        self.levels = [torch.cat([c[level] for c in chunks]) for level in range(len(chunks[0]))]
        self.masks = torch.cat(mask_chunks)
        self.position = {i: p for p, i in enumerate(indices)}

    def batch(
        self, indices: list[int], views: list[int], device: torch.device
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Cached features (float32 on ``device``) and soft masks ``(B, 1, S, S)`` in [0, 1]."""
        rows = torch.as_tensor([int(self.row[self.position[i], v]) for i, v in zip(indices, views, strict=True)])
        feats = [lvl[rows].to(device, torch.float32) for lvl in self.levels]
        return feats, self.masks[rows].to(device, torch.float32) / 255.0


def _fingerprint(cfg: SegConfig, keys: list[str], seed: int, epochs: int, init: str | None) -> str:
    config = cfg.model_dump(mode="json", exclude={"optim": {"tensorboard"}})  # logging only: resume either way
    return sha256_json({"config": config, "keys": keys, "seed": seed, "epochs": epochs, "init": init})


def _param_groups(model: PolypPVT, cfg: SegConfig) -> list[dict[str, Any]]:
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in model.encoder.parameters()}
    dec = [p for p in model.parameters() if id(p) not in enc_ids]
    groups = [{"params": dec, "base_lr": cfg.optim.lr}]
    if enc and cfg.optim.encoder_lr_scale > 0:
        groups.append({"params": enc, "base_lr": cfg.optim.lr * cfg.optim.encoder_lr_scale})
    elif enc:
        for p in enc:
            p.requires_grad_(False)
    for g in groups:
        g["lr"] = g["base_lr"]
    return groups


class SegTask(TrainTask):
    """Training Polyp-PVT as a :class:`endoked.training.TrainTask`.

    ``last.pt`` keeps its layout (``fingerprint``, ``epoch``, ``model``, ``optimizer``, ``scaler``, ``history``,
    ``best_metric``, ``best_epoch``, ``best_val``, ``elapsed``); the best checkpoint is ``model.pt`` as
    :func:`endoked.seg.checkpoint.checkpoint_dict` writes it.
    """

    def __init__(
        self,
        store: PairStore,
        train_idx: list[int],
        val_idx: list[int],
        cfg: SegConfig,
        *,
        seed: int,
        device: torch.device,
        epochs: int,
        init_checkpoint: Path | None,
        progress: bool,
    ) -> None:
        init = None
        if init_checkpoint is not None:
            init = read_checkpoint(init_checkpoint)
            cfg = init_architecture(cfg, init, init_checkpoint)
        self.store, self.train_idx, self.val_idx, self.cfg = store, train_idx, val_idx, cfg
        self.seed, self.device, self.epochs, self.progress = seed, device, epochs, progress
        keys = [store.items[i].key for i in train_idx] + ["|val|"] + [store.items[i].key for i in val_idx]
        self.fingerprint = _fingerprint(cfg, keys, seed, epochs, str(init_checkpoint) if init_checkpoint else None)
        self.model = _build(cfg, seed, init_checkpoint, init).to(device)
        groups = _param_groups(self.model, cfg)
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.optim.amp)
        self.world, self.rank, _ = dist_info()
        self.cached = cfg.model.freeze_stages > 0 and cfg.model.cache_views > 0
        self.scales = [1.0] if self.cached else list(cfg.augment.scales)
        self.usable = len(train_idx) // self.world * self.world if self.world > 1 else len(train_idx)
        self.batches = max(1, math.ceil(self.usable // self.world / cfg.optim.batch_size))
        self.items_per_epoch = self.batches * (len(self.scales) if cfg.augment.scale_mode == "all" else 1)
        self.total_steps = self.items_per_epoch * epochs
        self.warmup = round(cfg.optim.warmup_epochs * self.items_per_epoch)
        self.validates = bool(val_idx)
        self.cache: FeatureCache | None = None
        self.net: nn.Module = self.model
        self.best_val: dict[str, float] = {}
        self.last_val: dict[str, float] = {}

    def begin(self, state: LoopState) -> None:
        if self.cached and state.epoch < self.epochs:
            self.cache = FeatureCache(
                self.model, self.store, self.train_idx, self.cfg, self.seed, self.device, self.progress
            )
        self.net = wrap_distributed(_CachedForward(self.model) if self.cached else self.model, self.device)

    def train_epoch(self, epoch: int, progress: Any) -> dict[str, Any]:
        t_epoch = time.perf_counter()
        torch.manual_seed(self.seed * 1_000_003 + epoch)
        gen = _epoch_generator(self.seed, epoch + 1)
        order = [self.train_idx[int(i)] for i in torch.randperm(len(self.train_idx), generator=gen)]
        order = order[: self.usable][self.rank :: self.world]
        self.net.train()
        losses: list[float] = []
        step, bs, scales = epoch * self.items_per_epoch, self.cfg.optim.batch_size, self.scales
        for b in range(self.batches):
            inputs, masks = self._batch(order[b * bs : (b + 1) * bs], gen)
            use = (
                scales
                if self.cfg.augment.scale_mode == "all"
                else [scales[int(torch.randint(len(scales), (1,), generator=gen))]]
            )
            for scale in use:
                losses.append(self._step(inputs, masks, scale, step))
                step += 1
                progress.update(1)
                progress.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                if step % self.cfg.optim.log_every == 0:
                    logger.debug(
                        "step %d loss %.4f lr %.2e",
                        step,
                        np.mean(losses[-self.cfg.optim.log_every :]),
                        self.optimizer.param_groups[0]["lr"],
                    )
        return {
            "epoch": epoch + 1,
            "lr": self.optimizer.param_groups[0]["lr"],
            "loss": float(np.mean(losses)),
            "seconds": time.perf_counter() - t_epoch,
        }

    def _batch(self, idx: list[int], gen: torch.Generator) -> tuple[Any, torch.Tensor]:
        """Inputs (cached features of a random view, or augmented normalised images) and masks on the device."""
        if self.cache is not None:
            views = torch.randint(0, self.cache.views, (len(idx),), generator=gen).tolist()
            return self.cache.batch(idx, views, self.device)
        imgs_u8, masks_u8 = self.store.batch(idx)
        imgs, masks = augment(imgs_u8.float() / 255.0, masks_u8.float() / 255.0, gen, **_augment_args(self.cfg))
        return normalize_images(imgs, self.cfg.model.backbone).to(self.device), masks.to(self.device)

    def _step(self, inputs: Any, masks: torch.Tensor, scale: float, step: int) -> float:
        """One optimiser step at ``scale`` with the LR of global step ``step``; returns the loss."""
        cfg, size = self.cfg, self.cfg.image_size
        factor = lr_factor(step, self.total_steps, self.warmup, self.items_per_epoch, cfg)
        for g in self.optimizer.param_groups:
            g["lr"] = g["base_lr"] * factor
        s = scaled_size(size, scale)
        x, m = inputs, masks
        if s != size and self.cache is None:
            x = F.interpolate(inputs, size=(s, s), mode="bilinear", align_corners=True)
            m = F.interpolate(masks, size=(s, s), mode="bilinear", align_corners=True)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_for(self.device, cfg.optim.amp):
            p1, p2 = self.net(x, (s, s)) if self.cache is not None else self.net(x)
        loss = structure_loss(p1, m, cfg.optim.boundary_kernel, cfg.optim.legacy_loss) + structure_loss(
            p2, m, cfg.optim.boundary_kernel, cfg.optim.legacy_loss
        )
        optimizer_step(loss, self.optimizer, self.scaler, cfg.optim.grad_clip, self.params, cfg.optim.clip_mode)
        return float(loss.detach())

    def validate(self, epoch: int, final: bool) -> dict[str, Any] | None:
        self.last_val = {}
        if not self.val_idx or not ((epoch + 1) % self.cfg.optim.val_every == 0 or final):
            return None
        self.last_val = validate(self.model, self.store, self.val_idx, self.cfg, self.device)
        return {f"val_{k}": v for k, v in self.last_val.items()}

    def score(self, val: dict[str, Any]) -> float:
        return float(val.get("val_mean_dice", -math.inf))

    def best_checkpoint(self, state: LoopState, epoch: int, val: dict[str, Any] | None) -> dict[str, Any]:
        self.best_val = self.last_val
        return checkpoint_dict(
            self.model,
            self.cfg.image_size,
            {"epoch": epoch + 1, "val": self.last_val, "config": self.cfg.model_dump(mode="json"), "seed": self.seed},
        )

    def state_dict(self, state: LoopState) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "epoch": state.epoch,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": state.history,
            "best_metric": state.best_metric,
            "best_epoch": state.best_epoch,
            "best_val": self.best_val,
            "elapsed": state.elapsed,
        }

    def load_state_dict(self, content: dict[str, Any]) -> LoopState | None:
        if content.get("fingerprint") != self.fingerprint:
            return None
        self.model.load_state_dict(content["model"])
        self.optimizer.load_state_dict(content["optimizer"])
        self.scaler.load_state_dict(content["scaler"])
        self.best_val = dict(content["best_val"])
        return LoopState(
            epoch=int(content["epoch"]),
            best_epoch=int(content["best_epoch"]),
            best_metric=float(content["best_metric"]),
            history=list(content["history"]),
            elapsed=float(content["elapsed"]),
        )


def init_architecture(cfg: SegConfig, init: dict[str, Any], path: Path) -> SegConfig:
    """``cfg`` with the architecture of the checkpoint training starts from: its encoder, decoder width and
    decoder arithmetic replace ``model.backbone``, ``model.channel`` and ``model.decoder`` (logged).

    Raises:
        ConfigError: the checkpoint holds another network (PraNet: prediction only).
        DataFormatError: the checkpoint names an unknown network or decoder.
    """
    network = checkpoint_network(init, path)
    if network != "polyp-pvt":
        raise ConfigError(
            f"{path} holds {network} weights: they run with 'endoked predict' and 'seg export-onnx', but the "
            "network trained here is Polyp-PVT; start from a Polyp-PVT checkpoint (model.pt of this package, or "
            "the published Polyp-PVT / EndoKED-SEG .pth)"
        )
    arch: dict[str, Any] = {
        "backbone": str(init["encoder"]),
        "channel": int(init["channel"]),
        "decoder": checkpoint_decoder(init, path),
    }
    replaced = [f"model.{k} {getattr(cfg.model, k)} -> {v}" for k, v in arch.items() if getattr(cfg.model, k) != v]
    logger.info(
        "seg: starting from checkpoint %s: encoder %s, decoder width %d, decoder arithmetic %s%s",
        path,
        arch["backbone"],
        arch["channel"],
        arch["decoder"],
        f" (the checkpoint decides the architecture: {', '.join(replaced)})" if replaced else "",
    )
    return cfg.model_copy(update={"model": cfg.model.model_copy(update=arch)})


def _build(cfg: SegConfig, seed: int, init_checkpoint: Path | None, init: dict[str, Any] | None) -> PolypPVT:
    """The network seeded by ``seed`` (or warm-started from ``init``, the content of ``init_checkpoint``),
    frozen stages frozen."""
    torch.manual_seed(seed)
    model = build_model(
        cfg.model.backbone,
        cfg.model.channel,
        pretrained=cfg.model.pretrained and init is None,
        weights=cfg.model.weights if init is None else None,
        allow_download=cfg.model.allow_download,
        from_checkpoint=init_checkpoint if init is not None else None,
        decoder=cfg.model.decoder,
    )
    if init_checkpoint is not None and init is not None:
        load_weights(model, init, init_checkpoint)
    model.encoder.freeze(cfg.model.freeze_stages)
    return model


def train_model(
    store: PairStore,
    train_idx: list[int],
    val_idx: list[int],
    out_dir: Path,
    cfg: SegConfig,
    *,
    seed: int = 0,
    device: torch.device | None = None,
    epochs: int | None = None,
    init_checkpoint: Path | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train Polyp-PVT on ``store[train_idx]``, choose the epoch on ``store[val_idx]``, resume from ``out_dir``.

    Args:
        store: the pool's resized image/mask pairs.
        train_idx, val_idx: disjoint pool indices.
        out_dir: folder for ``last.pt`` (training state), ``model.pt``, ``history.json``, ``curve.png``.
        cfg: settings.
        seed: seeds model init, batch order, augmentation.
        device: compute device (default CPU; under torchrun, ``cuda:LOCAL_RANK`` when CUDA is used).
        epochs: overrides ``cfg.optim.epochs`` (refinement rounds).
        init_checkpoint: warm start from this checkpoint's weights (fresh optimizer and schedule); default
            ``cfg.model.init``. Its architecture replaces the configured one (:func:`init_architecture`).
        progress: show a progress bar.

    Returns:
        :class:`TrainResult`.
    """
    device = init_distributed(device or torch.device("cpu"))
    n_epochs = epochs or cfg.optim.epochs
    if init_checkpoint is None and cfg.model.init is not None:
        init_checkpoint = Path(cfg.model.init)
    if not train_idx:
        raise ConfigError("no training image left after the validation split; add images or lower val_fraction")
    out_dir.mkdir(parents=True, exist_ok=True)
    task = SegTask(
        store,
        train_idx,
        val_idx,
        cfg,
        seed=seed,
        device=device,
        epochs=n_epochs,
        init_checkpoint=init_checkpoint,
        progress=progress,
    )
    budget = cfg.optim.max_minutes * 60.0 if cfg.optim.max_minutes is not None else None
    result = TrainLoop(
        task,
        n_epochs,
        out_dir,
        best_name="model.pt",
        time_budget_s=budget,
        progress=progress,
        desc="seg train",
        unit="step",
        tensorboard_dir=out_dir / "tensorboard" if cfg.optim.tensorboard else None,
    ).run()
    history = result.state.history
    if dist_info()[1] == 0:
        atomic_write_json(out_dir / "history.json", history)
        write_curve(history, out_dir / "curve.png")
    return TrainResult(
        checkpoint=out_dir / "model.pt",
        history=history,
        best_epoch=result.state.best_epoch,
        best_val=task.best_val,
        n_train=len(train_idx),
        n_val=len(val_idx),
        stopped_early=result.state.stopped == "budget",
        seconds=result.seconds,
    )
