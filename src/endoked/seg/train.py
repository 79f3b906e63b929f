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
import os
import time
from dataclasses import dataclass, field
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
from endoked.progress import bar
from endoked.seg.checkpoint import build_model, checkpoint_dict, read_checkpoint, save_checkpoint, unwrap
from endoked.seg.config import SegConfig
from endoked.seg.data import PairStore, augment, scaled_size
from endoked.seg.loss import structure_loss
from endoked.seg.model import PolypPVT
from endoked.seg.plots import write_curve
from endoked.seg.validate import validate

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
    extra: dict[str, Any] = field(default_factory=dict)


def lr_factor(step: int, total_steps: int, warmup_steps: int, steps_per_epoch: int, cfg: SegConfig) -> float:
    """Multiplier of the peak LR at optimizer step ``step`` (0-based), computed afresh at every step.

    Linear warm-up from ``1 / (warmup_steps + 1)`` to 1 over ``warmup_steps``; then cosine or poly decay to
    ``min_lr_ratio`` at ``total_steps``, or ``step_rate ** (epoch // step_epochs)`` for the step schedule.
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if cfg.schedule == "step":
        return float(cfg.step_rate ** ((step // max(1, steps_per_epoch)) // cfg.step_epochs))
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    floor = cfg.min_lr_ratio
    if cfg.schedule == "cosine":
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    return floor + (1.0 - floor) * (1.0 - t) ** cfg.poly_power


def dist_info() -> tuple[int, int, int]:
    """``(world_size, rank, local_rank)`` from the ``torchrun`` environment (1, 0, 0 otherwise)."""
    return (int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
            int(os.environ.get("LOCAL_RANK", "0")))


def _epoch_generator(seed: int, epoch: int, salt: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7_919 + salt) % (2**63))


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

    def __init__(self, model: PolypPVT, store: PairStore, indices: list[int], cfg: SegConfig, seed: int,
                 device: torch.device, progress: bool = True) -> None:
        self.views = cfg.cache_views
        self.levels: list[torch.Tensor] = []
        self.masks = torch.empty(0)
        gen = _epoch_generator(seed, 0, salt=17)
        enc = model.encoder
        chunks: list[list[torch.Tensor]] = []
        mask_chunks: list[torch.Tensor] = []
        bs = max(1, cfg.predict_batch_size)

        def frozen(x: torch.Tensor) -> list[torch.Tensor]:
            with autocast_for(device, cfg.amp):
                return list(enc.frozen_features(x))

        with progress_bar(len(indices) * self.views, "caching frozen encoder features", progress, unit="view") as pbar:
            for start in range(0, len(indices), bs):
                idx = indices[start:start + bs]
                imgs_u8, masks_u8 = store.batch(idx)
                imgs, masks = imgs_u8.float() / 255.0, masks_u8.float() / 255.0
                for v in range(self.views):
                    if v == 0:
                        vi, vm = imgs, masks
                    else:
                        vi, vm = augment(imgs, masks, gen, hflip=cfg.hflip, vflip=cfg.vflip, rotate90=cfg.rotate90,
                                         crop_scale=cfg.crop_scale, color_jitter=cfg.color_jitter,
                                         zoom_out=cfg.zoom_out, zoom_min=cfg.zoom_min)
                    x = normalize_images(vi, enc.name).to(device)
                    chunks.append(frozen_forward(frozen, x, torch.float16))
                    mask_chunks.append((vm * 255).round().to(torch.uint8))
                    pbar.update(len(idx))
        # rows are ordered (chunk, view, image); keep a map from (position in indices, view) to row
        self.row = np.zeros((len(indices), self.views), dtype=np.int64)
        r = 0
        for start in range(0, len(indices), bs):
            n = len(indices[start:start + bs])
            for v in range(self.views):
                self.row[start:start + n, v] = np.arange(r, r + n)
                r += n
        self.levels = [torch.cat([c[level] for c in chunks]) for level in range(len(chunks[0]))]
        self.masks = torch.cat(mask_chunks)
        self.position = {i: p for p, i in enumerate(indices)}

    def batch(self, indices: list[int], views: list[int], device: torch.device) -> tuple[
            list[torch.Tensor], torch.Tensor]:
        """Cached features (float32 on ``device``) and soft masks ``(B, 1, S, S)`` in [0, 1]."""
        rows = torch.as_tensor([int(self.row[self.position[i], v]) for i, v in zip(indices, views, strict=True)])
        feats = [lvl[rows].to(device, torch.float32) for lvl in self.levels]
        return feats, self.masks[rows].to(device, torch.float32) / 255.0


def _fingerprint(cfg: SegConfig, keys: list[str], seed: int, epochs: int, init: str | None) -> str:
    return sha256_json({"config": cfg.model_dump(mode="json"), "keys": keys, "seed": seed, "epochs": epochs,
                        "init": init})


def _param_groups(model: PolypPVT, cfg: SegConfig) -> list[dict[str, Any]]:
    enc = [p for p in model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in model.encoder.parameters()}
    dec = [p for p in model.parameters() if id(p) not in enc_ids]
    groups = [{"params": dec, "base_lr": cfg.lr}]
    if enc and cfg.encoder_lr_scale > 0:
        groups.append({"params": enc, "base_lr": cfg.lr * cfg.encoder_lr_scale})
    elif enc:
        for p in enc:
            p.requires_grad_(False)
    for g in groups:
        g["lr"] = g["base_lr"]
    return groups


def train_model(store: PairStore, train_idx: list[int], val_idx: list[int], out_dir: Path, cfg: SegConfig, *,
                seed: int = 0, device: torch.device | None = None, epochs: int | None = None,
                init_checkpoint: Path | None = None, progress: bool = True) -> TrainResult:
    """Train Polyp-PVT on ``store[train_idx]``, choose the epoch on ``store[val_idx]``, resume from ``out_dir``.

    Args:
        store: the pool's resized image/mask pairs.
        train_idx, val_idx: disjoint pool indices.
        out_dir: folder for ``last.pt`` (training state), ``model.pt``, ``history.json``, ``curve.png``.
        cfg: settings.
        seed: seeds model init, batch order, augmentation.
        device: compute device (default CPU; under torchrun, ``cuda:LOCAL_RANK`` when CUDA is used).
        epochs: overrides ``cfg.epochs`` (refinement rounds).
        init_checkpoint: warm start from this checkpoint's weights (fresh optimizer and schedule).
        progress: show per-epoch progress bars.

    Returns:
        :class:`TrainResult`.
    """
    world, rank, local_rank = dist_info()
    device = device or torch.device("cpu")
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    n_epochs = epochs or cfg.epochs
    if not train_idx:
        raise ConfigError("no training image left after the validation split; add images or lower val_fraction")
    cached = cfg.freeze_stages > 0 and cfg.cache_views > 0
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = [store.items[i].key for i in train_idx] + ["|val|"] + [store.items[i].key for i in val_idx]
    fp = _fingerprint(cfg, keys, seed, n_epochs, str(init_checkpoint) if init_checkpoint else None)

    torch.manual_seed(seed)
    model = build_model(cfg.encoder, cfg.channel, pretrained=cfg.pretrained and init_checkpoint is None,
                        weights=cfg.encoder_weights if init_checkpoint is None else None,
                        allow_download=cfg.allow_download)
    if init_checkpoint is not None:
        model.load_state_dict(read_checkpoint(init_checkpoint)["state_dict"])
    model.encoder.freeze(cfg.freeze_stages)
    model.to(device)
    groups = _param_groups(model, cfg)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp)

    state_path, best_path = out_dir / "last.pt", out_dir / "model.pt"
    history: list[dict[str, Any]] = []
    start_epoch, best_metric, best_epoch, best_val, elapsed = 0, -math.inf, 0, {}, 0.0
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            start_epoch, history = int(state["epoch"]), list(state["history"])
            best_metric, best_epoch = float(state["best_metric"]), int(state["best_epoch"])
            best_val, elapsed = dict(state["best_val"]), float(state["elapsed"])
            logger.info("resuming training from epoch %d (%s)", start_epoch + 1, state_path)
        else:
            logger.warning("%s belongs to another configuration or pool; starting afresh", state_path)

    cache = FeatureCache(model, store, train_idx, cfg, seed, device, progress) if cached and \
        start_epoch < n_epochs else None
    net: nn.Module = _CachedForward(model) if cached else model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)
    scales = [1.0] if cached else list(cfg.scales)
    n_scale_steps = len(scales) if cfg.scale_mode == "all" else 1
    usable = len(train_idx) // world * world if world > 1 else len(train_idx)
    shard = usable // world
    batches = max(1, math.ceil(shard / cfg.batch_size))
    steps_per_epoch = batches * n_scale_steps
    total_steps = steps_per_epoch * n_epochs
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    params = [p for g in groups for p in g["params"]]
    size = cfg.image_size
    stopped_early = False
    t_start = time.perf_counter() - elapsed

    for epoch in range(start_epoch, n_epochs):
        t_epoch = time.perf_counter()
        torch.manual_seed(seed * 1_000_003 + epoch)
        gen = _epoch_generator(seed, epoch + 1)
        order = [train_idx[int(i)] for i in torch.randperm(len(train_idx), generator=gen)][:usable][rank::world]
        net.train()
        losses: list[float] = []
        step = epoch * steps_per_epoch
        with bar(steps_per_epoch, desc=f"seg epoch {epoch + 1}/{n_epochs}", unit="step",
                 enabled=progress and rank == 0) as pbar:
            for b in range(batches):
                idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                if cache is not None:
                    views = torch.randint(0, cache.views, (len(idx),), generator=gen).tolist()
                    feats, masks = cache.batch(idx, views, device)
                    inputs: Any = feats
                else:
                    imgs_u8, masks_u8 = store.batch(idx)
                    imgs, masks = augment(imgs_u8.float() / 255.0, masks_u8.float() / 255.0, gen, hflip=cfg.hflip,
                                          vflip=cfg.vflip, rotate90=cfg.rotate90, crop_scale=cfg.crop_scale,
                                          color_jitter=cfg.color_jitter, zoom_out=cfg.zoom_out,
                                          zoom_min=cfg.zoom_min)
                    inputs = normalize_images(imgs, cfg.encoder).to(device)
                    masks = masks.to(device)
                use = scales if cfg.scale_mode == "all" else [scales[int(torch.randint(len(scales), (1,),
                                                                                         generator=gen))]]
                for scale in use:
                    factor = lr_factor(step, total_steps, warmup, steps_per_epoch, cfg)
                    for g in optimizer.param_groups:
                        g["lr"] = g["base_lr"] * factor
                    s = scaled_size(size, scale)
                    x, m = inputs, masks
                    if s != size and cache is None:
                        x = F.interpolate(inputs, size=(s, s), mode="bilinear", align_corners=True)
                        m = F.interpolate(masks, size=(s, s), mode="bilinear", align_corners=True)
                    optimizer.zero_grad(set_to_none=True)
                    with autocast_for(device, cfg.amp):
                        p1, p2 = net(x, (s, s)) if cache is not None else net(x)
                    loss = (structure_loss(p1, m, cfg.boundary_kernel, cfg.legacy_loss)
                            + structure_loss(p2, m, cfg.boundary_kernel, cfg.legacy_loss))
                    scaler.scale(loss).backward()
                    if cfg.grad_clip is not None:
                        scaler.unscale_(optimizer)
                        if cfg.clip_mode == "norm":
                            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                        else:
                            torch.nn.utils.clip_grad_value_(params, cfg.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                    step += 1
                    losses.append(float(loss.detach()))
                    pbar.update(1)
                    pbar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                    if step % cfg.log_every == 0:
                        logger.debug("step %d loss %.4f lr %.2e", step, np.mean(losses[-cfg.log_every:]),
                                     optimizer.param_groups[0]["lr"])
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                                  "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t_epoch}
        last = epoch + 1 == n_epochs
        over_budget = cfg.max_minutes is not None and (time.perf_counter() - t_start) / 60.0 > cfg.max_minutes
        if rank == 0:
            val: dict[str, float] = {}
            if val_idx and ((epoch + 1) % cfg.val_every == 0 or last or over_budget):
                val = validate(model, store, val_idx, cfg, device)
                record.update({f"val_{k}": v for k, v in val.items()})
            metric = val.get("mean_dice", -math.inf) if val_idx else float(epoch)
            if (val or not val_idx) and metric > best_metric:
                best_metric, best_epoch, best_val = metric, epoch + 1, val
                save_checkpoint(best_path, checkpoint_dict(model, size, {
                    "epoch": epoch + 1, "val": val, "config": cfg.model_dump(mode="json"), "seed": seed}))
            history.append(record)
            elapsed = time.perf_counter() - t_start
            save_checkpoint(state_path, {
                "fingerprint": fp, "epoch": epoch + 1, "model": unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "history": history,
                "best_metric": best_metric, "best_epoch": best_epoch, "best_val": best_val, "elapsed": elapsed})
            eta = elapsed / (epoch + 1 - start_epoch) * (n_epochs - epoch - 1) if epoch + 1 > start_epoch else 0
            logger.info("epoch %d/%d loss %.4f%s lr %.2e %.0fs (ETA %.0fs)", epoch + 1, n_epochs, record["loss"],
                        f" val mDice {val['mean_dice']:.4f}" if val else "", record["lr"], record["seconds"], eta)
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
        if over_budget and not last:
            logger.warning("time budget of %.1f min reached after epoch %d of %d; stopping", cfg.max_minutes or 0,
                           epoch + 1, n_epochs)
            stopped_early = True
            break

    if rank == 0:
        atomic_write_json(out_dir / "history.json", history)
        write_curve(history, out_dir / "curve.png")
    return TrainResult(checkpoint=best_path, history=history, best_epoch=best_epoch, best_val=best_val,
                       n_train=len(train_idx), n_val=len(val_idx), stopped_early=stopped_early,
                       seconds=time.perf_counter() - t_start)
