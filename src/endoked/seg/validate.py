"""Validation on the held-out part of the training pool, with the toolbox metrics of :mod:`endoked.eval`."""

from __future__ import annotations

import torch

from endoked.backbones import normalize_images
from endoked.device import autocast_for
from endoked.eval import PolypMetrics
from endoked.seg.config import SegConfig
from endoked.seg.data import PairStore
from endoked.seg.model import PolypPVT

#: Figures reported per validation.
VAL_KEYS: tuple[str, ...] = ("mean_dice", "mean_iou", "dice_05", "mae")


@torch.no_grad()
def validate(
    model: PolypPVT, store: PairStore, indices: list[int], cfg: SegConfig, device: torch.device
) -> dict[str, float]:
    """Score ``sigmoid(P1 + P2)`` against the (binarised) masks at the training size.

    Returns:
        ``{"mean_dice", "mean_iou", "dice_05", "mae"}`` as the PraNet toolbox computes them.
    """
    was_training = model.training
    model.eval()
    metric = PolypMetrics(keep_per_image=False)
    bs = max(1, cfg.predict.batch_size)
    for start in range(0, len(indices), bs):
        imgs, masks = store.batch(indices[start : start + bs])
        x = normalize_images(imgs, model.encoder.name).to(device)
        with autocast_for(device, cfg.optim.amp):
            prob = torch.sigmoid(model.predict_logits(x).float()).cpu().numpy()
        for p, m in zip(prob[:, 0], masks[:, 0].numpy(), strict=True):
            metric.update(p, m > 127)
    model.train(was_training)
    out = metric.compute()
    return {k: float(out[k]) for k in VAL_KEYS}
