"""Saving and loading segmentation checkpoints (``model.pt``) and building the network they describe.

A checkpoint is a plain dict readable with ``torch.load(..., weights_only=True)``::

    {"format": "endoked-seg/1", "state_dict": {...}, "encoder": "tf_efficientnet_lite0", "channel": 32,
     "image_size": 352, "mean": [r, g, b], "std": [r, g, b], "epoch": 12, "val": {"mean_dice": ...},
     "config": {...SegConfig...}}
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from endoked.backbones import backbone_info
from endoked.errors import DataFormatError
from endoked.io import atomic_path
from endoked.seg.encoder import build_encoder
from endoked.seg.model import PolypPVT

logger = logging.getLogger(__name__)

FORMAT = "endoked-seg/1"


def build_model(
    encoder: str,
    channel: int = 32,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    allow_download: bool = False,
    from_checkpoint: str | Path | None = None,
) -> PolypPVT:
    """Polyp-PVT with an encoder from the backbone registry (see :func:`endoked.seg.encoder.build_encoder`);
    ``from_checkpoint``: the network is built for the weights of that checkpoint (no weight lookup)."""
    enc = build_encoder(
        encoder,
        pretrained=pretrained,
        weights=weights,
        allow_download=allow_download,
        from_checkpoint=from_checkpoint,
    )
    return PolypPVT(enc, channel=channel)


def unwrap(model: torch.nn.Module) -> PolypPVT:
    """The :class:`PolypPVT` inside a DDP or cached-forward wrapper."""
    while not isinstance(model, PolypPVT):
        inner = getattr(model, "module", None) or getattr(model, "model", None)
        if not isinstance(inner, torch.nn.Module):
            raise TypeError(f"no PolypPVT inside {type(model).__name__}")
        model = inner
    return model


def checkpoint_dict(model: torch.nn.Module, image_size: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint content of a trained model (tensors moved to CPU)."""
    net = unwrap(model)
    info = backbone_info(net.encoder.name)
    return {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "encoder": net.encoder.name,
        "channel": int(net.head_cfm.in_channels),
        "image_size": int(image_size),
        "mean": list(info.mean),
        "std": list(info.std),
        **(extra or {}),
    }


def save_checkpoint(path: Path, content: dict[str, Any]) -> Path:
    """Write a checkpoint dict atomically."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(content, tmp)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint file.

    Raises:
        DataFormatError: missing file, unreadable, or not a segmentation checkpoint of this package.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise DataFormatError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DataFormatError(
            f"{path} is not a segmentation checkpoint (format {FORMAT}); train one with "
            "'endoked seg train' or the seg stage"
        )
    return ckpt


def load_model(path: str | Path) -> tuple[PolypPVT, dict[str, Any]]:
    """Build the network of a checkpoint and load its weights (eval mode, CPU).

    Returns:
        The model and the checkpoint dict (for ``image_size``, ``mean``, ``std``...).
    """
    ckpt = read_checkpoint(path)
    model = build_model(str(ckpt["encoder"]), int(ckpt["channel"]), from_checkpoint=path)
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise DataFormatError(f"checkpoint {path} does not fit its own architecture: {exc}") from exc
    model.eval()
    logger.info(
        "seg model: %d tensors loaded from checkpoint %s (encoder %s, epoch %s)",
        len(ckpt["state_dict"]),
        path,
        ckpt["encoder"],
        ckpt.get("epoch", "?"),
    )
    return model, ckpt
