"""The optical-biopsy classifier (split encoder + small head), its calibration and its checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from endoked.backbones import create_backbone
from endoked.backbones.split import SplitEncoder
from endoked.biopsy.config import BiopsyConfig
from endoked.errors import ConfigError, DataFormatError
from endoked.io import atomic_path

logger = logging.getLogger(__name__)

FORMAT = "endoked.biopsy/1"
MIL_FORMAT = "endoked.mil/1"


class BiopsyHead(nn.Module):
    """Dropout, an optional hidden layer, and one logit (neoplastic vs non-neoplastic)."""

    def __init__(self, in_dim: int, hidden_dim: int = 0, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden_dim > 0:
            layers += [nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
            in_dim = hidden_dim
        layers.append(nn.Linear(in_dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``feats: (B, F)`` float -> logits ``(B,)``."""
        return self.net(feats).squeeze(-1)


class BiopsyModel(nn.Module):
    """Encoder (frozen prefix, trainable suffix) + head, with a calibration temperature and a threshold.

    Attributes:
        encoder: :class:`~endoked.backbones.split.SplitEncoder`.
        head: :class:`BiopsyHead`.
        temperature: the logit is divided by it before the sigmoid (1 = uncalibrated).
        threshold: operating point on the calibrated probability of the neoplastic class.
    """

    temperature: torch.Tensor

    def __init__(self, encoder: SplitEncoder, head: BiopsyHead, threshold: float = 0.5) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.register_buffer("temperature", torch.ones(()))
        self.threshold = float(threshold)

    def logits_from_cached(self, cached: torch.Tensor) -> torch.Tensor:
        """``cached``: encoder-prefix outputs ``(B, ...)`` -> uncalibrated logits ``(B,)``."""
        return self.head(self.encoder.suffix(cached))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, 3, S, S)`` uint8 RGB -> calibrated probability of neoplastic ``(B,)``."""
        logits = self.logits_from_cached(self.encoder.prefix(images))
        return torch.sigmoid(logits.float() / self.temperature)


def build_model(
    cfg: BiopsyConfig,
    encoder_state: dict[str, torch.Tensor] | None = None,
    pretrained: bool | None = None,
    from_checkpoint: Path | None = None,
) -> BiopsyModel:
    """Create the configured backbone and head.

    Args:
        encoder_state: weights of the timm network (e.g. the MIL encoder's) loaded over the backbone.
        pretrained: override ``cfg.pretrained`` (False when weights are loaded right after).
        from_checkpoint: the checkpoint ``encoder_state`` comes from (the backbone is built without weight lookup).
    """
    use_pretrained = cfg.pretrained if pretrained is None else pretrained
    net = create_backbone(
        cfg.backbone,
        pretrained=use_pretrained,
        weights=cfg.weights if use_pretrained else None,
        allow_download=cfg.allow_download,
        from_checkpoint=from_checkpoint,
        num_classes=0,
    )
    if encoder_state is not None:
        try:
            net.load_state_dict(encoder_state)
        except RuntimeError as exc:
            raise DataFormatError(f"encoder weights do not fit backbone {cfg.backbone!r}: {exc}") from exc
    encoder = SplitEncoder(net, cfg.backbone, cfg.trainable_blocks, cfg.freeze_bn, section="biopsy")
    in_dim = int(getattr(net, "num_features", 0))
    return BiopsyModel(encoder, BiopsyHead(in_dim, cfg.hidden_dim, cfg.dropout), cfg.threshold)


def mil_encoder_state(path: Path, backbone: str) -> dict[str, torch.Tensor]:
    """The encoder weights of a MIL checkpoint (``mil/model.pt``), checked to be the same ``backbone``."""
    obj = _load(path, "MIL checkpoint")
    if obj.get("format") != MIL_FORMAT:
        raise DataFormatError(f"{path} is not a MIL checkpoint (format {MIL_FORMAT!r} expected)")
    mil_backbone = obj.get("config", {}).get("backbone")
    if mil_backbone != backbone:
        raise ConfigError(
            f"biopsy.init_from_mil: the MIL checkpoint {path} uses backbone {mil_backbone!r}, the "
            f"biopsy config {backbone!r}; set biopsy.backbone={mil_backbone} or init_from_mil=false"
        )
    return dict(obj["encoder"])


def save_model(path: Path, model: BiopsyModel, cfg: BiopsyConfig, meta: dict[str, Any]) -> Path:
    """Write a self-contained checkpoint (encoder, head, temperature, threshold, config, meta) atomically."""
    obj = {
        "format": FORMAT,
        "config": cfg.model_dump(mode="json"),
        "encoder": model.encoder.model.state_dict(),
        "head": model.head.state_dict(),
        "temperature": float(model.temperature),
        "threshold": model.threshold,
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[BiopsyModel, BiopsyConfig, dict[str, Any]]:
    """Rebuild ``(model, config, meta)`` from :func:`save_model`'s file (in eval mode; no weight lookup)."""
    obj = _load(path, "biopsy checkpoint")
    if obj.get("format") != FORMAT:
        raise DataFormatError(
            f"{path} is not a biopsy checkpoint (format {FORMAT!r} expected); train one with `endoked biopsy train`"
        )
    cfg = BiopsyConfig.model_validate(obj["config"])
    model = build_model(cfg, encoder_state=obj["encoder"], pretrained=False, from_checkpoint=path)
    model.head.load_state_dict(obj["head"])
    model.temperature.fill_(float(obj["temperature"]))
    model.threshold = float(obj["threshold"])
    logger.info("biopsy model: encoder %s and head loaded from checkpoint %s", cfg.backbone, path)
    return model.to(device).eval(), cfg, dict(obj.get("meta", {}))


def _load(path: Path, what: str) -> dict[str, Any]:
    if not Path(path).is_file():
        raise DataFormatError(f"{what} not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for unreadable files
        raise DataFormatError(f"cannot read {what} {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path} is not a {what}")
    return obj
