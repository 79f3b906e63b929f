"""A timm encoder split into a frozen part, whose outputs are cached once, and a trainable part (used by the
mil and biopsy stages).

``trainable_blocks`` chooses the split:

- ``0``: everything frozen. The cache holds pooled features ``(F,)`` per image; epochs only run the heads.
- ``k > 0``: the last ``k`` block stages, the head convolution and pooling train; the cache holds the frozen
  stages' feature maps ``(C, h, w)``. Needs an encoder with timm's EfficientNet layout (``conv_stem``,
  ``bn1``, ``blocks``, ``conv_head``, ``bn2``): the EfficientNet(-Lite) and MobileNetV2 families.
- ``-1``: the whole encoder trains; the cache holds the decoded, resized images ``(3, S, S)`` uint8.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from endoked.backbones.registry import backbone_info
from endoked.errors import ConfigError

_EFFNET_PARTS = ("conv_stem", "bn1", "blocks", "conv_head", "bn2")


class SplitEncoder(nn.Module):
    """``prefix`` (frozen, cached) then ``suffix`` (trainable) of a timm backbone with pooled output.

    Attributes:
        model: the timm network built with ``num_classes=0``.
        pooling: global pooling of the last feature maps: ``avg``, ``max`` or ``avgmax`` (concatenated).
        trainable_blocks: see the module docstring.
        num_features: F.

    ``section`` is the configuration section (``mil``, ``biopsy``) that error messages name.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        backbone: str,
        trainable_blocks: int,
        freeze_bn: bool = True,
        pooling: str = "max",
        section: str = "mil",
    ) -> None:
        super().__init__()
        if pooling not in ("avg", "max", "avgmax"):
            raise ConfigError(f"{section}.pooling must be avg, max or avgmax, got {pooling!r}")
        self.model = model
        self.pooling = pooling
        self.backbone = backbone
        self.trainable_blocks = trainable_blocks
        self.freeze_bn = freeze_bn
        self.num_features = int(getattr(model, "num_features", 0)) * (2 if pooling == "avgmax" else 1)
        info = backbone_info(backbone)
        self.register_buffer("mean", torch.tensor(info.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(info.std).view(1, 3, 1, 1), persistent=False)
        if trainable_blocks > 0:
            if not all(hasattr(model, p) for p in _EFFNET_PARTS):
                raise ConfigError(
                    f"{section}.trainable_blocks={trainable_blocks} needs an "
                    f"EfficientNet/MobileNetV2-style backbone; {backbone!r} supports only 0 (frozen) or "
                    "-1 (all trainable)"
                )
            n = len(cast(nn.Sequential, model.blocks))
            if trainable_blocks > n:
                raise ConfigError(
                    f"{section}.trainable_blocks={trainable_blocks} but {backbone!r} has {n} block stages"
                )
            self.split = n - trainable_blocks
        else:
            self.split = 0
        for p in self.model.parameters():
            p.requires_grad_(False)
        for p in self.trainable_parameters(all_candidates=True):
            p.requires_grad_(True)

    @property
    def caches_images(self) -> bool:
        """Whether the cache holds decoded images (whole encoder trainable)."""
        return self.trainable_blocks == -1

    @property
    def frozen(self) -> bool:
        return self.trainable_blocks == 0

    def trainable_parameters(self, all_candidates: bool = False) -> list[nn.Parameter]:
        """Parameters of the trainable part (empty when frozen)."""
        if self.trainable_blocks == 0:
            return []
        if self.trainable_blocks == -1:
            return list(self.model.parameters())
        return [p for mod in self._trainable_modules() for p in mod.parameters()]

    def _part(self, name: str) -> nn.Module:
        return cast(nn.Module, getattr(self.model, name))

    def _blocks(self) -> list[nn.Module]:
        return list(cast(nn.Sequential, self._part("blocks")))

    def _trainable_modules(self) -> list[nn.Module]:
        if self.trainable_blocks == -1:
            return [self.model]
        if self.trainable_blocks == 0:
            return []
        return [*self._blocks()[self.split :], self._part("conv_head"), self._part("bn2")]

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, 3, S, S)`` uint8 -> normalised float32."""
        return (images.float() / 255.0 - self.mean) / self.std

    def prefix(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen part: ``images: (B, 3, S, S)`` uint8 -> what is cached (pooled features, maps or images)."""
        if self.trainable_blocks == -1:
            return images
        x = self.normalise(images)
        if self.trainable_blocks == 0:
            return self.pool(self.model.forward_features(x))  # type: ignore[operator]
        x = self._part("bn1")(self._part("conv_stem")(x))
        for block in self._blocks()[: self.split]:
            x = block(x)
        return x

    def suffix(self, cached: torch.Tensor) -> torch.Tensor:
        """Trainable part: cached tensors of B images -> pooled features ``(B, F)`` float32."""
        if self.trainable_blocks == 0:
            return cached.float()
        if self.trainable_blocks == -1:
            return self.pool(self.model.forward_features(self.normalise(cached)))  # type: ignore[operator]
        x = cached.float()
        for block in self._blocks()[self.split :]:
            x = block(x)
        return self.pool(self._part("bn2")(self._part("conv_head")(x)))

    def pool(self, maps: torch.Tensor) -> torch.Tensor:
        """Global pooling of the last feature maps ``(B, C, h, w)`` -> ``(B, C)`` (``(B, 2C)`` for avgmax).

        Max pooling keeps small objects (a polyp covering a few cells) visible, which average pooling dilutes.
        Outputs that are not 4-D (token models) are averaged over all but the first and last dimensions.
        """
        if maps.ndim != 4:
            return maps.mean(dim=tuple(range(1, maps.ndim - 1))) if maps.ndim > 2 else maps
        if self.pooling == "avg":
            return maps.mean(dim=(2, 3))
        if self.pooling == "max":
            return maps.amax(dim=(2, 3))
        return torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images: (B, 3, S, S)`` uint8 -> pooled features ``(B, F)``."""
        return self.suffix(self.prefix(images))

    def train(self, mode: bool = True) -> SplitEncoder:
        """Frozen parts always stay in eval mode; trainable BatchNorm too when ``freeze_bn``."""
        super().train(False)
        if mode:
            for mod in self._trainable_modules():
                mod.train(True)
                if self.freeze_bn:
                    for sub in mod.modules():
                        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                            sub.eval()
        return self
