"""The MIL encoder: the configured backbone split by :class:`endoked.backbones.split.SplitEncoder` into a
frozen part, whose outputs are cached once, and a trainable part (``mil.trainable_blocks``)."""

from __future__ import annotations

from endoked.backbones import create_backbone
from endoked.backbones.split import SplitEncoder
from endoked.mil.config import MilConfig


def build_encoder(cfg: MilConfig) -> SplitEncoder:
    """Create the configured backbone (pooled output) and split it per ``cfg.trainable_blocks``."""
    model = create_backbone(
        cfg.backbone, pretrained=cfg.pretrained, weights=cfg.weights, allow_download=cfg.allow_download, num_classes=0
    )
    return SplitEncoder(model, cfg.backbone, cfg.trainable_blocks, cfg.freeze_bn, cfg.pooling)
