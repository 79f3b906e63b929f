"""The self-contained MIL checkpoint (``mil/model.pt``) and scoring new images with it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from endoked.backbones import create_backbone
from endoked.backbones.split import SplitEncoder
from endoked.errors import DataFormatError
from endoked.io import atomic_path
from endoked.mil.config import MilConfig
from endoked.mil.model import MilHeads

logger = logging.getLogger(__name__)

FORMAT = "endoked.mil/1"


def save_model(path: Path, heads: MilHeads, encoder: SplitEncoder, cfg: MilConfig, meta: dict[str, Any]) -> Path:
    """Write encoder weights, head weights, the config and ``meta`` (epoch, AUROC, ...) atomically."""
    obj = {
        "format": FORMAT,
        "config": cfg.model_dump(mode="json"),
        "in_dim": encoder.num_features,
        "encoder": encoder.model.state_dict(),
        "heads": heads.state_dict(),
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_model(
    path: Path, device: torch.device | str = "cpu"
) -> tuple[SplitEncoder, MilHeads, MilConfig, dict[str, Any]]:
    """Rebuild ``(encoder, heads, config, meta)`` from :func:`save_model`'s file (no weight lookup needed)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for unreadable files
        raise DataFormatError(f"cannot read MIL checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise DataFormatError(f"{path} is not a MIL checkpoint (format {FORMAT!r} expected)")
    cfg = MilConfig.model_validate(obj["config"])
    model = create_backbone(cfg.backbone, from_checkpoint=path, num_classes=0)
    model.load_state_dict(obj["encoder"])
    logger.info("MIL model: encoder %s and heads loaded from checkpoint %s", cfg.backbone, path)
    encoder = SplitEncoder(model, cfg.backbone, cfg.trainable_blocks, cfg.freeze_bn, cfg.pooling)
    heads = MilHeads(int(obj["in_dim"]), cfg.hidden_dim, cfg.attention_dim, cfg.dropout)
    heads.load_state_dict(obj["heads"])
    return encoder.to(device).eval(), heads.to(device).eval(), cfg, dict(obj.get("meta", {}))


def score_images(encoder: SplitEncoder, heads: MilHeads, images: torch.Tensor, source: str = "student") -> np.ndarray:
    """Polyp scores of images.

    Args:
        images: ``(B, 3, S, S)`` uint8 RGB, S the checkpoint's ``image_size``.
        source: ``score_source`` of :class:`MilConfig`.

    Returns:
        ``(B,)`` float32 in [0, 1].
    """
    device = next(heads.parameters()).device
    with torch.no_grad():
        feats = encoder(images.to(device))
        return heads.score_instances(feats.float(), source).cpu().numpy().astype(np.float32)
