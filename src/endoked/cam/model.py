"""The CAM classifier: a (frozen) feature encoder and a dense classification head.

The head scores every location of a feature map (1×1 convolutions over the encoder's features at one or
more levels, upsampled to the finest level used and concatenated), giving a logit map; the image logit is
a pooling of that map. With ``head="linear"`` and ``pool="gap"`` this is exactly a GAP + linear classifier
and its logit map is the classic CAM. With ``pool="lse"`` (log-sum-exp) or ``"max"`` the classifier is a
multiple-instance learner over locations: a polyp-free image must have *every* location negative, which
suppresses activations on mucosa, folds and instruments that occur in both classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from endoked.errors import ConfigError

POOLS = ("gap", "lse", "max", "topk")
HEADS = ("linear", "mlp")


def pool_logit_map(logit_map: torch.Tensor, pool: str, lse_r: float = 5.0, topk: float = 0.1) -> torch.Tensor:
    """Pool a ``(B, 1, h, w)`` logit map to ``(B,)`` image logits.

    Args:
        logit_map: location logits.
        pool: ``gap`` (mean), ``lse`` (``log(mean(exp(r·x))) / r``, between mean and max), ``max``, or
            ``topk`` (mean of the highest ``topk`` fraction of locations).
        lse_r: sharpness of ``lse``.
        topk: fraction of locations averaged by ``topk``.
    """
    flat = logit_map.flatten(1)
    if pool == "gap":
        return flat.mean(1)
    if pool == "max":
        return flat.amax(1)
    if pool == "lse":
        return (torch.logsumexp(lse_r * flat, dim=1) - math.log(flat.shape[1])) / lse_r
    if pool == "topk":
        k = max(1, round(topk * flat.shape[1]))
        return flat.topk(k, dim=1).values.mean(1)
    raise ConfigError(f"unknown pooling {pool!r}; valid: {', '.join(POOLS)}")


class CamNet(nn.Module):
    """Encoder + dense head.

    Args:
        encoder: a feature extractor, ``encoder(x: (B, 3, H, W)) -> list[(B, C_i, H/r_i, W/r_i)]``
            (e.g. a timm ``features_only`` model).
        channels: channels of every encoder level.
        reductions: stride of every encoder level.
        levels: indices of the levels the head reads.
        head: ``linear`` (one 1×1 conv) or ``mlp`` (1×1 conv → ReLU → 1×1 conv).
        hidden: width of the ``mlp`` head.
        pool: image-level pooling of the logit map (see :func:`pool_logit_map`).
        lse_r: sharpness of ``lse`` pooling.
        topk: fraction of locations for ``topk`` pooling.
        freeze_encoder: keep encoder weights fixed (no gradients, eval-mode batch norm).
    """

    def __init__(
        self,
        encoder: nn.Module,
        channels: Sequence[int],
        reductions: Sequence[int],
        levels: Sequence[int] = (-1,),
        head: str = "linear",
        hidden: int = 64,
        pool: str = "gap",
        lse_r: float = 5.0,
        topk: float = 0.1,
        freeze_encoder: bool = True,
    ) -> None:
        super().__init__()
        n = len(channels)
        self.levels = tuple(sorted({lv % n for lv in levels}))
        if not self.levels:
            raise ConfigError("cam.levels must name at least one encoder level")
        if head not in HEADS:
            raise ConfigError(f"unknown cam head {head!r}; valid: {', '.join(HEADS)}")
        if pool not in POOLS:
            raise ConfigError(f"unknown cam pooling {pool!r}; valid: {', '.join(POOLS)}")
        self.encoder = encoder
        self.channels = tuple(int(c) for c in channels)
        self.reductions = tuple(int(r) for r in reductions)
        self.pool, self.lse_r, self.topk = pool, lse_r, topk
        self.freeze_encoder = freeze_encoder
        c_in = sum(self.channels[lv] for lv in self.levels)
        if head == "linear":
            self.head: nn.Module = nn.Conv2d(c_in, 1, 1)
        else:
            self.head = nn.Sequential(nn.Conv2d(c_in, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1))
        if freeze_encoder:
            for p in self.encoder.parameters():
                p.requires_grad_(False)

    @property
    def stride(self) -> int:
        """Stride of the logit map (the finest level the head reads)."""
        return min(self.reductions[lv] for lv in self.levels)

    def train(self, mode: bool = True) -> CamNet:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All encoder levels for normalised images ``(B, 3, H, W)``."""
        return list(self.encoder(x))

    def fuse(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Concatenate the head's levels at the finest one's resolution: ``(B, sum C, h, w)``."""
        used = [feats[lv] for lv in self.levels]
        size = used[0].shape[-2:]
        return torch.cat(
            [
                f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                for f in used
            ],
            1,
        )

    def head_map(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Location logits ``(B, 1, h, w)`` from encoder levels."""
        return self.head(self.fuse(feats))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image logits ``(B,)`` and location logits ``(B, 1, h, w)`` for normalised images."""
        logit_map = self.head_map(self.encode(x))
        return pool_logit_map(logit_map, self.pool, self.lse_r, self.topk), logit_map

    def pooled(self, logit_map: torch.Tensor) -> torch.Tensor:
        """The image logits of a logit map under this model's pooling."""
        return pool_logit_map(logit_map, self.pool, self.lse_r, self.topk)


class _LogitMap(nn.Module):
    """The part of :class:`CamNet` that ONNX Runtime runs: normalised images -> location logits."""

    def __init__(self, net: CamNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.head_map(self.net.encode(x))


class OrtCamNet:
    """A trained :class:`CamNet` whose encoder and head run in ONNX Runtime (:mod:`endoked.onnxrt`).

    Called like the net (``(logits, logit_map)`` for normalised images), for the ``cam`` method; the pooling
    to image logits stays in torch. One session per input size (TF-"same" padding of the EfficientNet-Lite
    encoders depends on the size), exported on first use of that size; the batch size may vary.
    """

    def __init__(self, net: CamNet, threads: int | None = None) -> None:
        self.net = net.eval()
        self.stride, self.channels, self.levels = net.stride, net.channels, net.levels
        self.threads = threads
        self._sessions: dict[tuple[int, int], Any] = {}

    def _session(self, h: int, w: int) -> Any:
        from endoked.onnxrt import OrtModule

        key = (h, w)
        if key not in self._sessions:
            self._sessions[key] = OrtModule(
                _LogitMap(self.net),
                [torch.zeros(2, 3, h, w)],
                ["x"],
                ["logit_map"],
                {"x": {0: "batch"}, "logit_map": {0: "batch"}},
                threads=self.threads,
            )
        return self._sessions[key]

    def prepare(self, size: int) -> None:
        """Export the session of ``size``-square inputs now (raises :class:`endoked.onnxrt.OnnxExportError`)."""
        self._session(size, size)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (logit_map,) = self._session(int(x.shape[-2]), int(x.shape[-1]))(x)
        return self.net.pooled(logit_map), logit_map
