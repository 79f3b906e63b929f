"""PraNet (Fan et al., "PraNet: Parallel Reverse Attention Network for Polyp Segmentation", MICCAI 2020), for
running its published weights.

The module names are those of the published code (DengPingFan/PraNet, ``lib/PraNet_Res2Net.py`` class
``PraNet``), so its released state dict loads as is. The encoder ``resnet`` is Res2Net-50 v1b 26w_4s
(``lib/Res2Net_v1b.py``): deep stem 3-32-32-64, average-pool shortcuts, 26-wide 4-scale bottlenecks -- timm's
``res2net50d``, whose parameter names and arithmetic are the same (its classifier ``fc`` is kept, unused, as in
the release).

For an input ``(B, 3, H, W)`` (H, W multiples of 32) and width ``c`` (32):

* encoder levels ``X2 (B, 512, H/8)``, ``X3 (B, 1024, H/16)``, ``X4 (B, 2048, H/32)``;
* receptive-field blocks reduce each to ``c`` channels; a partial decoder (the cascade of Polyp-PVT's CFM, with
  a final ``3c -> 1`` convolution) gives the global map ``S5 (B, 1, H/8)``;
* three reverse-attention branches, from the deepest: the running map ``S`` at the level's size gates the
  level's features with ``1 - sigmoid(S)``, a small conv stack predicts a residual, ``S <- S + residual``;
* outputs: ``S5``, ``S4``, ``S3``, ``S2`` logits upsampled to ``(B, 1, H, W)``; inference uses ``S2``
  (the published test script).

As in the published code, its conv-BN units apply no ReLU unless the forward pass does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from endoked.backbones import create_backbone

ENCODER = "res2net50d"


class BasicConv(nn.Module):
    """Convolution (no bias) and BatchNorm, no activation; ``conv`` and ``bn`` as in the published code."""

    def __init__(
        self, c_in: int, c_out: int, k: int | tuple[int, int], padding: int | tuple[int, int] = 0, dilation: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def _branch(c_in: int, c: int, k: int) -> nn.Sequential:
    """1x1, then 1 x k and k x 1, then a 3x3 dilated by ``k``."""
    if k == 1:
        return nn.Sequential(BasicConv(c_in, c, 1))
    return nn.Sequential(
        BasicConv(c_in, c, 1),
        BasicConv(c, c, (1, k), padding=(0, k // 2)),
        BasicConv(c, c, (k, 1), padding=(k // 2, 0)),
        BasicConv(c, c, 3, padding=k, dilation=k),
    )


class RFB(nn.Module):
    """Receptive-field block: four branches (1, 3, 5, 7), concatenated and fused, plus a 1x1 shortcut, ReLU.
    ``(B, c_in, h, w) -> (B, c, h, w)``."""

    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.branch0 = _branch(c_in, c, 1)
        self.branch1 = _branch(c_in, c, 3)
        self.branch2 = _branch(c_in, c, 5)
        self.branch3 = _branch(c_in, c, 7)
        self.conv_cat = BasicConv(4 * c, c, 3, padding=1)
        self.conv_res = BasicConv(c_in, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        return F.relu(self.conv_cat(torch.cat(branches, dim=1)) + self.conv_res(x))


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class Aggregation(nn.Module):
    """Partial decoder: ``x4 (B, c, h/4)``, ``x3 (B, c, h/2)``, ``x2 (B, c, h) -> (B, 1, h, w)`` logits."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv_upsample1 = BasicConv(c, c, 3, padding=1)
        self.conv_upsample2 = BasicConv(c, c, 3, padding=1)
        self.conv_upsample3 = BasicConv(c, c, 3, padding=1)
        self.conv_upsample4 = BasicConv(c, c, 3, padding=1)
        self.conv_upsample5 = BasicConv(2 * c, 2 * c, 3, padding=1)
        self.conv_concat2 = BasicConv(2 * c, 2 * c, 3, padding=1)
        self.conv_concat3 = BasicConv(3 * c, 3 * c, 3, padding=1)
        self.conv4 = BasicConv(3 * c, 3 * c, 3, padding=1)
        self.conv5 = nn.Conv2d(3 * c, 1, 1)

    def forward(self, x4: torch.Tensor, x3: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        x4_up = _up2(x4)
        x3_1 = self.conv_upsample1(x4_up) * x3
        x2_1 = self.conv_upsample2(_up2(x4_up)) * self.conv_upsample3(_up2(x3)) * x2
        x3_2 = self.conv_concat2(torch.cat([x3_1, self.conv_upsample4(x4_up)], dim=1))
        x2_2 = self.conv_concat3(torch.cat([x2_1, self.conv_upsample5(_up2(x3_2))], dim=1))
        return self.conv5(self.conv4(x2_2))


def _resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def _reverse(
    s: torch.Tensor, feat: torch.Tensor, first: nn.Module, relu_convs: list[nn.Module], last: nn.Module
) -> torch.Tensor:
    """One reverse-attention branch: ``s + last(relu(...relu(first((1 - sigmoid(s)) * feat))))``."""
    x = first((1.0 - torch.sigmoid(s)) * feat)
    for conv in relu_convs:
        x = F.relu(conv(x))
    return s + last(x)


class PraNet(nn.Module):
    """PraNet on Res2Net-50 v1b (``resnet``), width ``channel`` (32).

    Args:
        channel: width of the receptive-field blocks and the partial decoder.
        from_checkpoint: the checkpoint whose weights are loaded right after (the encoder is built without any
            weight lookup).
    """

    def __init__(self, channel: int = 32, from_checkpoint: str | Path | None = None) -> None:
        super().__init__()
        self.resnet = create_backbone(ENCODER, pretrained=False, from_checkpoint=from_checkpoint)
        self.rfb2_1 = RFB(512, channel)
        self.rfb3_1 = RFB(1024, channel)
        self.rfb4_1 = RFB(2048, channel)
        self.agg1 = Aggregation(channel)
        self.ra4_conv1 = BasicConv(2048, 256, 1)
        self.ra4_conv2 = BasicConv(256, 256, 5, padding=2)
        self.ra4_conv3 = BasicConv(256, 256, 5, padding=2)
        self.ra4_conv4 = BasicConv(256, 256, 5, padding=2)
        self.ra4_conv5 = BasicConv(256, 1, 1)
        for level, c_in in ((3, 1024), (2, 512)):
            setattr(self, f"ra{level}_conv1", BasicConv(c_in, 64, 1))
            setattr(self, f"ra{level}_conv2", BasicConv(64, 64, 3, padding=1))
            setattr(self, f"ra{level}_conv3", BasicConv(64, 64, 3, padding=1))
            setattr(self, f"ra{level}_conv4", BasicConv(64, 1, 3, padding=1))

    def _branch_convs(self, level: int) -> tuple[nn.Module, list[nn.Module], nn.Module]:
        n = 5 if level == 4 else 4
        convs = [getattr(self, f"ra{level}_conv{i}") for i in range(1, n + 1)]
        return convs[0], convs[1:-1], convs[-1]

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits ``S5 (B, 1, H/8)``, ``S4 (H/32)``, ``S3 (H/16)``, ``S2 (H/8)`` at their own sizes."""
        r: Any = self.resnet  # timm's ResNet: conv1, bn1, act1, maxpool, layer1..4
        x = r.maxpool(r.act1(r.bn1(r.conv1(x))))
        x2 = r.layer2(r.layer1(x))
        x3 = r.layer3(x2)
        x4 = r.layer4(x3)
        s5 = self.agg1(self.rfb4_1(x4), self.rfb3_1(x3), self.rfb2_1(x2))
        s4 = _reverse(_resize(s5, 0.25), x4, *self._branch_convs(4))
        s3 = _reverse(_resize(s4, 2), x3, *self._branch_convs(3))
        s2 = _reverse(_resize(s3, 2), x2, *self._branch_convs(2))
        return s5, s4, s3, s2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits ``S5, S4, S3, S2``, each upsampled to ``(B, 1, H, W)``, for ``x: (B, 3, H, W)`` normalised
        images (H, W multiples of 32)."""
        s5, s4, s3, s2 = self.maps(x)
        return _resize(s5, 8), _resize(s4, 32), _resize(s3, 16), _resize(s2, 8)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Inference logits ``S2``: ``(B, 1, H, W)``."""
        return _resize(self.maps(x)[3], 8)

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`logits` without gradients."""
        return self.logits(x)
