"""Multi-level encoders from the backbone registry, cut into four stages that can be frozen and cached.

A timm classification network is run module by module up to its stride-32 feature; the modules are
grouped into four stages ending at strides 4, 8, 16 and 32 (the layout of PVTv2). For an input
``(B, 3, H, W)`` the encoder returns ``[f1, f2, f3, f4]`` with ``f_i: (B, C_i, H / 4 / 2**(i-1), W / ...)``:

==================  ==================  ===========================
encoder              channels C1..C4     stage boundaries
==================  ==================  ===========================
pvt_v2_b2            64, 128, 320, 512   stages.0 .. stages.3
pvt_v2_b0            32, 64, 160, 256    stages.0 .. stages.3
tf_efficientnet_lite0 24, 40, 112, 320   blocks.1, 2, 4, 6
mobilenetv2_100      24, 32, 96, 320     blocks.1, 2, 4, 6
==================  ==================  ===========================

Because stage ``k`` only needs the output of stage ``k - 1``, the outputs of frozen leading stages can be
computed once and cached (:meth:`StagedEncoder.forward_from`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from endoked.backbones import backbone_info, create_backbone
from endoked.errors import ConfigError

REDUCTIONS: tuple[int, ...] = (4, 8, 16, 32)


def _flatten(model: nn.Module, containers: set[str]) -> list[tuple[str, nn.Module]]:
    """Top-level children of ``model`` in order, with the named containers expanded one level."""
    out: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if name in containers and isinstance(child, nn.Sequential | nn.ModuleList):
            out.extend((f"{name}.{sub}", mod) for sub, mod in child.named_children())
        else:
            out.append((name, child))
    return out


class StagedEncoder(nn.Module):
    """A backbone as four sequential stages with outputs at strides 4, 8, 16, 32.

    Args:
        model: a timm classification model whose ``feature_info`` names the modules producing each
            reduction and whose ``forward_features`` runs its top-level children in order (true of the
            EfficientNet/MobileNet, PVTv2 and ResNet families).
        name: registry name (for normalisation statistics and messages).

    Raises:
        ConfigError: the network does not expose features at strides 4, 8, 16 and 32.
    """

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        info = getattr(model, "feature_info", None)
        if not isinstance(info, list):
            raise ConfigError(f"encoder {name!r} has no feature_info; use a timm CNN or PVTv2 backbone")
        taps: dict[int, str] = {}
        chans: dict[int, int] = {}
        for entry in info:
            red = int(entry["reduction"])
            if red in REDUCTIONS:  # the last module with a reduction wins
                taps[red], chans[red] = str(entry["module"]), int(entry["num_chs"])
        if sorted(taps) != list(REDUCTIONS):
            raise ConfigError(f"encoder {name!r} gives features at strides {sorted(taps)}; need 4, 8, 16, 32")
        containers = {m.split(".")[0] for m in taps.values() if "." in m}
        modules = _flatten(model, containers)
        names = [n for n, _ in modules]
        stages: list[nn.Sequential] = []
        start = 0
        for red in REDUCTIONS:
            if taps[red] not in names:
                raise ConfigError(f"encoder {name!r}: feature module {taps[red]!r} is not a top-level step")
            end = names.index(taps[red]) + 1
            stages.append(nn.Sequential(*(m for _, m in modules[start:end])))
            start = end
        self.name = name
        self.stages = nn.ModuleList(stages)
        self.channels: list[int] = [chans[r] for r in REDUCTIONS]
        self.n_frozen = 0

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of a normalised batch.

        Args:
            x: ``(B, 3, H, W)`` float, normalised with the encoder's mean/std; H, W multiples of 32.

        Returns:
            ``[f1, f2, f3, f4]``, ``f_i: (B, C_i, H / r_i, W / r_i)`` with ``r = 4, 8, 16, 32``.
        """
        return self.forward_from([], x)

    def forward_from(self, cached: Sequence[torch.Tensor], x: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Run the stages after ``len(cached)`` already computed levels.

        Args:
            cached: outputs of the first ``k`` stages (``k`` may be 0, then ``x`` is the image batch).
            x: the image batch when ``cached`` is empty.

        Returns:
            All four levels (the cached ones first, unchanged).
        """
        feats = list(cached)
        h = feats[-1] if feats else x
        if h is None:
            raise ValueError("forward_from needs either cached features or an image batch")
        for stage in self.stages[len(feats) :]:
            h = stage(h)
            feats.append(h)
        return feats

    def frozen_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the frozen leading stages only (no gradient), for caching."""
        feats: list[torch.Tensor] = []
        h = x
        with torch.no_grad():
            for stage in self.stages[: self.n_frozen]:
                h = stage(h)
                feats.append(h)
        return feats

    def freeze(self, n_stages: int) -> None:
        """Freeze the first ``n_stages`` stages (no gradients, BatchNorm statistics fixed)."""
        if not 0 <= n_stages <= len(self.stages):
            raise ConfigError(f"freeze_stages must be in 0..{len(self.stages)}, got {n_stages}")
        self.n_frozen = n_stages
        for i, stage in enumerate(self.stages):
            for p in stage.parameters():
                p.requires_grad_(i >= n_stages)
        self.train(self.training)

    def train(self, mode: bool = True) -> StagedEncoder:
        super().train(mode)
        for stage in self.stages[: self.n_frozen]:
            stage.eval()
        return self


def build_encoder(
    name: str,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    allow_download: bool = False,
    from_checkpoint: str | Path | None = None,
) -> StagedEncoder:
    """Create a registered backbone (offline weights first) and cut it into four stages.

    Raises:
        ConfigError: unknown backbone, or one without stride 4/8/16/32 features.
        WeightsNotFoundError: pretrained weights requested but not available locally.
    """
    info = backbone_info(name)
    model = create_backbone(
        info.name,
        pretrained=pretrained,
        weights=weights,
        allow_download=allow_download,
        from_checkpoint=from_checkpoint,
    )
    return StagedEncoder(model, info.name)
