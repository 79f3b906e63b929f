"""Polyp-PVT (Dong et al., "Polyp-PVT: Polyp Segmentation with Pyramid Vision Transformers", CAAI AIR 2023).

The network, for an input ``(B, 3, H, W)`` (H, W multiples of 32) and decoder width ``c`` (32):

* encoder (:mod:`endoked.seg.encoder`): ``X1 (B, C1, H/4, W/4)``, ``X2 (B, C2, H/8)``, ``X3 (B, C3, H/16)``,
  ``X4 (B, C4, H/32)``;
* camouflage identification module (CIM) on the low-level ``X1``: channel attention then spatial attention,
  ``T1 = SA(CA(X1) * X1) * (CA(X1) * X1)`` ``(B, C1, H/4, W/4)`` -- fine, boundary-rich polyp cues;
* cascaded fusion module (CFM) on the high-level ``X2..X4`` reduced to ``c`` channels by 1x1 conv-BN-ReLU:
  deeper levels are upsampled and multiplied into shallower ones, concatenated and fused, giving
  ``T2 (B, c, H/8, W/8)`` -- the polyp's location and extent;
* similarity aggregation module (SAM): ``T1`` reduced to ``c`` channels and resized to ``H/8`` acts as an
  attention over ``T2``; a graph convolution over a few pooled "anchor" nodes propagates high-level semantics
  to every pixel (a non-local operation), giving ``Z (B, c, H/8, W/8)``;
* two heads: ``P1 = conv1x1(T2)``, ``P2 = conv1x1(Z)``, each ``(B, 1, H/8, W/8)`` logits upsampled x8 to
  ``(B, 1, H, W)``. Training supervises both; inference uses ``P1 + P2``.

Two decoder arithmetics share the same parameters (``decoder``):

* ``"endoked"``: every conv-BN unit of the decoder ends in a ReLU (as the paper describes) and the CFM brings
  ``X4`` to ``H/8`` in one x4 bilinear upsampling;
* ``"official"``: the arithmetic of the published Polyp-PVT code (DengPingFan/Polyp-PVT ``lib/pvt.py``), which
  the released Polyp-PVT and EndoKED-SEG weights were trained with: its conv-BN units (``BasicConv2d``) apply
  no ReLU, and the CFM upsamples ``X4`` by 2 twice.
"""

from __future__ import annotations

from typing import get_args

import torch
import torch.nn.functional as F
from torch import nn

from endoked.seg.config import Decoder
from endoked.seg.encoder import StagedEncoder

DECODERS: tuple[str, ...] = get_args(Decoder)


class ConvBN(nn.Sequential):
    """``k x k`` convolution (no bias), BatchNorm and, with ``relu``, a ReLU; spatial size kept for odd ``k``.

    The parameters (``0.weight``, ``1.*``) are the same with and without the ReLU."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, relu: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ChannelAttention(nn.Module):
    """CBAM channel attention: ``(B, C, H, W) -> (B, C, 1, 1)`` weights in (0, 1)."""

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // ratio)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        mx = self.fc2(F.relu(self.fc1(F.adaptive_max_pool2d(x, 1))))
        return torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: ``(B, C, H, W) -> (B, 1, H, W)`` weights in (0, 1)."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


class CIM(nn.Module):
    """Camouflage identification module: ``(B, C1, h, w) -> (B, C1, h, w)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.ca = ChannelAttention(channels)
        self.sa = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ca(x) * x
        return self.sa(x) * x


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)


class CFM(nn.Module):
    """Cascaded fusion module: ``x4 (B, c, h/4)``, ``x3 (B, c, h/2)``, ``x2 (B, c, h) -> (B, c, h, w)``.

    ``relu``: the conv-BN units end in a ReLU; ``stepwise``: ``x4`` reaches ``x2``'s size through ``x3``'s
    (two x2 upsamplings, as the published code) instead of one x4 upsampling."""

    def __init__(self, c: int, relu: bool = True, stepwise: bool = False) -> None:
        super().__init__()
        self.stepwise = stepwise
        self.up1 = ConvBN(c, c, 3, relu)
        self.up2 = ConvBN(c, c, 3, relu)
        self.up3 = ConvBN(c, c, 3, relu)
        self.up4 = ConvBN(c, c, 3, relu)
        self.up5 = ConvBN(2 * c, 2 * c, 3, relu)
        self.cat2 = ConvBN(2 * c, 2 * c, 3, relu)
        self.cat3 = ConvBN(3 * c, 3 * c, 3, relu)
        self.out = ConvBN(3 * c, c, 3, relu)

    def forward(self, x4: torch.Tensor, x3: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        x4_at_2 = _up(_up(x4, x3), x2) if self.stepwise else _up(x4, x2)
        x3_1 = self.up1(_up(x4, x3)) * x3
        x2_1 = self.up2(x4_at_2) * self.up3(_up(x3, x2)) * x2
        x3_2 = self.cat2(torch.cat([x3_1, self.up4(_up(x4, x3))], dim=1))
        x2_2 = self.cat3(torch.cat([x2_1, self.up5(_up(x3_2, x2))], dim=1))
        return self.out(x2_2)


class GCN(nn.Module):
    """Graph convolution over ``N`` nodes of ``S`` states: ``(B, S, N) -> (B, S, N)``."""

    def __init__(self, num_state: int, num_node: int) -> None:
        super().__init__()
        self.node = nn.Conv1d(num_node, num_node, 1)
        self.state = nn.Conv1d(num_state, num_state, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.node(x.transpose(1, 2)).transpose(1, 2) - x
        return F.relu(self.state(h))


class SAM(nn.Module):
    """Similarity aggregation module: ``x (B, c, h, w)`` high-level, ``guide (B, c, h', w')`` low-level.

    The guide's softmax over channels (channel 1) weights the projected high-level features; adaptive pooling
    to ``(mids + 2)^2`` cells keeps the inner ``mids^2`` as graph nodes; pixels are softly assigned to nodes,
    node states are refined by :class:`GCN` and projected back, and added to ``x`` (residual).

    Returns:
        ``(B, c, h, w)``.
    """

    def __init__(self, c: int, plane_mid: int = 16, mids: int = 4) -> None:
        super().__init__()
        self.num_s = plane_mid
        self.mids = mids
        self.conv_state = nn.Conv2d(c, plane_mid, 1)
        self.conv_proj = nn.Conv2d(c, plane_mid, 1)
        self.gcn = GCN(plane_mid, mids * mids)
        self.conv_extend = nn.Conv2d(plane_mid, c, 1, bias=False)

    def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        guide = F.interpolate(guide, size=(h, w), mode="nearest")
        attn = torch.softmax(guide, dim=1)[:, 1:2]
        state = self.conv_state(x).reshape(n, self.num_s, -1)  # (B, S, hw)
        proj = self.conv_proj(x)  # (B, S, h, w)
        anchors = F.adaptive_avg_pool2d(proj * attn, self.mids + 2)[:, :, 1:-1, 1:-1].reshape(n, self.num_s, -1)
        assign = torch.softmax(torch.bmm(anchors.transpose(1, 2), proj.reshape(n, self.num_s, -1)), dim=1)
        nodes = torch.bmm(state, assign.transpose(1, 2))  # (B, S, N)
        nodes = self.gcn(nodes)
        back = torch.bmm(nodes, assign).reshape(n, self.num_s, h, w)
        return x + self.conv_extend(back)


class PolypPVT(nn.Module):
    """Polyp-PVT on a :class:`~endoked.seg.encoder.StagedEncoder`.

    Args:
        encoder: the four-stage encoder.
        channel: decoder width ``c``.
        decoder: ``"endoked"`` or ``"official"``, the decoder arithmetic (see the module's description).

    Raises:
        ValueError: an unknown ``decoder``.
    """

    def __init__(self, encoder: StagedEncoder, channel: int = 32, decoder: Decoder = "endoked") -> None:
        super().__init__()
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; use one of {', '.join(DECODERS)}")
        relu = decoder == "endoked"
        c1, c2, c3, c4 = encoder.channels
        self.decoder: Decoder = decoder
        self.encoder = encoder
        self.cim = CIM(c1)
        self.reduce1 = ConvBN(c1, channel, 1, relu)
        self.reduce2 = ConvBN(c2, channel, 1, relu)
        self.reduce3 = ConvBN(c3, channel, 1, relu)
        self.reduce4 = ConvBN(c4, channel, 1, relu)
        self.cfm = CFM(channel, relu=relu, stepwise=not relu)
        self.sam = SAM(channel)
        self.head_cfm = nn.Conv2d(channel, 1, 1)
        self.head_sam = nn.Conv2d(channel, 1, 1)

    def decode(self, feats: list[torch.Tensor], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder on the four feature levels; returns logits ``P1, P2: (B, 1, *size)``."""
        x1, x2, x3, x4 = feats
        t1 = self.cim(x1)
        t2 = self.cfm(self.reduce4(x4), self.reduce3(x3), self.reduce2(x2))
        guide = F.interpolate(self.reduce1(t1), scale_factor=0.5, mode="bilinear", align_corners=True)
        z = self.sam(t2, guide)
        p1 = F.interpolate(self.head_cfm(t2), size=size, mode="bilinear", align_corners=False)
        p2 = F.interpolate(self.head_sam(z), size=size, mode="bilinear", align_corners=False)
        return p1, p2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of both heads.

        Args:
            x: ``(B, 3, H, W)`` normalised images, H and W multiples of 32.

        Returns:
            ``P1`` (CFM head) and ``P2`` (SAM head), each ``(B, 1, H, W)`` logits.
        """
        return self.decode(self.encoder(x), (x.shape[-2], x.shape[-1]))

    def forward_cached(self, cached: list[torch.Tensor], size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`forward` from the cached outputs of the frozen encoder stages."""
        return self.decode(self.encoder.forward_from(cached), size)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Inference logits ``P1 + P2``: ``(B, 1, H, W)``."""
        p1, p2 = self(x)
        return p1 + p2

    @torch.no_grad()
    def predict_logits(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`logits` without gradients."""
        return self.logits(x)
