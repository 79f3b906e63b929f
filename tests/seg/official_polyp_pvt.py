"""A reference of the published Polyp-PVT network, written from its code (DengPingFan/Polyp-PVT ``lib/pvt.py``
and ``lib/pvtv2.py``, pvt_v2_b2): the same module names, hence the same state-dict keys, and the same
arithmetic, independent of :mod:`endoked.seg.model` and of timm. Tests only: it checks that the official
weights, mapped onto :class:`endoked.seg.model.PolypPVT`, compute what the official code computes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DIMS = (64, 128, 320, 512)
HEADS = (1, 2, 5, 8)
MLP_RATIOS = (8, 8, 4, 4)
DEPTHS = (3, 4, 6, 3)
SR_RATIOS = (8, 4, 2, 1)


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: strided conv, then LayerNorm (default eps) over the tokens."""

    def __init__(self, c_in: int, dim: int, k: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c_in, dim, k, stride=stride, padding=k // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class SpatialReductionAttention(nn.Module):
    def __init__(self, dim: int, heads: int, sr: int) -> None:
        super().__init__()
        self.heads, self.sr_ratio = heads, sr
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, stride=sr)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        d = c // self.heads
        q = self.q(x).reshape(b, n, self.heads, d).permute(0, 2, 1, 3)
        src = x
        if self.sr_ratio > 1:
            grid = x.permute(0, 2, 1).reshape(b, c, h, w)
            src = self.norm(self.sr(grid).reshape(b, c, -1).permute(0, 2, 1))
        kv = self.kv(src).reshape(b, -1, 2, self.heads, d).permute(2, 0, 3, 1, 4)
        attn = ((q @ kv[0].transpose(-2, -1)) * d**-0.5).softmax(dim=-1)
        return self.proj((attn @ kv[1]).transpose(1, 2).reshape(b, n, c))


class DepthwiseConv(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        return self.dwconv(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DepthwiseConv(hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.fc2(F.gelu(self.dwconv(self.fc1(x), h, w)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, sr: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = SpatialReductionAttention(dim, heads, sr)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), h, w)
        return x + self.mlp(self.norm2(x), h, w)


class PvtV2B2(nn.Module):
    """``patch_embed1..4``, ``block1..4``, ``norm1..4``; returns the four stage outputs ``(B, C_k, h_k, w_k)``."""

    def __init__(self) -> None:
        super().__init__()
        c_in = 3
        for k in range(4):
            kernel, stride = (7, 4) if k == 0 else (3, 2)
            setattr(self, f"patch_embed{k + 1}", PatchEmbed(c_in, DIMS[k], kernel, stride))
            blocks = [Block(DIMS[k], HEADS[k], MLP_RATIOS[k], SR_RATIOS[k]) for _ in range(DEPTHS[k])]
            setattr(self, f"block{k + 1}", nn.ModuleList(blocks))
            setattr(self, f"norm{k + 1}", nn.LayerNorm(DIMS[k], eps=1e-6))
            c_in = DIMS[k]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for k in range(1, 5):
            x, h, w = getattr(self, f"patch_embed{k}")(x)
            for blk in getattr(self, f"block{k}"):
                x = blk(x, h, w)
            x = getattr(self, f"norm{k}")(x)
            x = x.reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2)
            outs.append(x)
        return outs


class BasicConv2d(nn.Module):
    """Conv (no bias) and BatchNorm; the published code builds a ReLU here but never applies it."""

    def __init__(self, c_in: int, c_out: int, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class CFM(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        for n in range(1, 5):
            setattr(self, f"conv_upsample{n}", BasicConv2d(c, c, 3))
        self.conv_upsample5 = BasicConv2d(2 * c, 2 * c, 3)
        self.conv_concat2 = BasicConv2d(2 * c, 2 * c, 3)
        self.conv_concat3 = BasicConv2d(3 * c, 3 * c, 3)
        self.conv4 = BasicConv2d(3 * c, c, 3)

    def forward(self, deep: torch.Tensor, mid: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        mid_1 = self.conv_upsample1(up2(deep)) * mid
        shallow_1 = self.conv_upsample2(up2(up2(deep))) * self.conv_upsample3(up2(mid)) * shallow
        mid_2 = self.conv_concat2(torch.cat([mid_1, self.conv_upsample4(up2(deep))], 1))
        shallow_2 = self.conv_concat3(torch.cat([shallow_1, self.conv_upsample5(up2(mid_2))], 1))
        return self.conv4(shallow_2)


class GCN(nn.Module):
    def __init__(self, states: int, nodes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(nodes, nodes, 1)
        self.conv2 = nn.Conv1d(states, states, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x.permute(0, 2, 1)).permute(0, 2, 1) - x
        return F.relu(self.conv2(h))


class SAM(nn.Module):
    def __init__(self, c: int = 32, mid: int = 16, mids: int = 4) -> None:
        super().__init__()
        self.mid, self.mids = mid, mids
        self.conv_state = nn.Conv2d(c, mid, 1)
        self.conv_proj = nn.Conv2d(c, mid, 1)
        self.gcn = GCN(mid, mids * mids)
        self.conv_extend = nn.Conv2d(mid, c, 1, bias=False)

    def forward(self, x: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        edge = F.interpolate(edge, (h, w))  # nearest, as F.upsample's default
        edge = torch.softmax(edge, dim=1)[:, 1:2]
        state = self.conv_state(x).view(n, self.mid, -1)
        proj = self.conv_proj(x)
        anchor = F.adaptive_avg_pool2d(proj * edge, self.mids + 2)[:, :, 1:-1, 1:-1].reshape(n, self.mid, -1)
        assign = torch.softmax(torch.matmul(anchor.permute(0, 2, 1), proj.reshape(n, self.mid, -1)), dim=1)
        nodes = self.gcn(torch.matmul(state, assign.permute(0, 2, 1)))
        return x + self.conv_extend(torch.matmul(nodes, assign).view(n, self.mid, h, w))


class ChannelAttention(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 16, 1, bias=False)
        self.fc2 = nn.Conv2d(c // 16, c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        mx = self.fc2(F.relu(self.fc1(F.adaptive_max_pool2d(x, 1))))
        return torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, 7, padding=3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True)[0]], dim=1)
        return torch.sigmoid(self.conv1(pooled))


class OfficialPolypPVT(nn.Module):
    """``forward(x) -> (prediction1, prediction2)``: CFM and SAM head logits upsampled x8."""

    def __init__(self, channel: int = 32) -> None:
        super().__init__()
        self.backbone = PvtV2B2()
        self.Translayer2_0 = BasicConv2d(64, channel, 1)
        self.Translayer2_1 = BasicConv2d(128, channel, 1)
        self.Translayer3_1 = BasicConv2d(320, channel, 1)
        self.Translayer4_1 = BasicConv2d(512, channel, 1)
        self.CFM = CFM(channel)
        self.ca = ChannelAttention(64)
        self.sa = SpatialAttention()
        self.SAM = SAM()
        self.out_SAM = nn.Conv2d(channel, 1, 1)
        self.out_CFM = nn.Conv2d(channel, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x1, x2, x3, x4 = self.backbone(x)
        x1 = self.ca(x1) * x1
        cim = self.sa(x1) * x1
        cfm = self.CFM(self.Translayer4_1(x4), self.Translayer3_1(x3), self.Translayer2_1(x2))
        t2 = F.interpolate(self.Translayer2_0(cim), scale_factor=0.5, mode="bilinear", align_corners=True)
        sam = self.SAM(cfm, t2)
        p1 = F.interpolate(self.out_CFM(cfm), scale_factor=8, mode="bilinear")
        p2 = F.interpolate(self.out_SAM(sam), scale_factor=8, mode="bilinear")
        return p1, p2


def random_state(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values of the model's keys and shapes, of a scale that keeps activations of order 1: weights
    ~ N(0, 1 / fan_in), biases ~ N(0, 0.1^2), norm weights ~ 1 + N(0, 0.1^2), BatchNorm variances in [0.5, 1.5]."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, ref in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(ref.shape, generator=gen)
        elif ref.ndim == 1 and key.endswith("weight"):  # LayerNorm / BatchNorm scale
            out[key] = 1.0 + 0.1 * torch.randn(ref.shape, generator=gen)
        elif ref.ndim >= 2:
            out[key] = torch.randn(ref.shape, generator=gen) / (ref[0].numel() ** 0.5)
        else:
            out[key] = 0.1 * torch.randn(ref.shape, generator=gen)
    return out
