"""A reference of the published PraNet network, written from its code (DengPingFan/PraNet
``lib/PraNet_Res2Net.py`` and ``lib/Res2Net_v1b.py``, Res2Net-50 v1b 26w_4s): the same module names, hence the
same state-dict keys, and the same arithmetic, independent of :mod:`endoked.seg.pranet` and of timm. Tests only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Bottle2neck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        width = math.floor(planes * 26 / 64.0)
        self.width = width
        self.first = downsample is not None  # the published 'stage' blocks: the first of each layer
        self.conv1 = nn.Conv2d(c_in, 4 * width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4 * width)
        self.convs = nn.ModuleList([nn.Conv2d(width, width, 3, stride, 1, bias=False) for _ in range(3)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(3)])
        self.conv3 = nn.Conv2d(4 * width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        parts = torch.split(out, self.width, 1)
        outs = []
        sp = parts[0]
        for i in range(3):
            sp = parts[i] if i == 0 or self.first else sp + parts[i]
            sp = F.relu(self.bns[i](self.convs[i](sp)))
            outs.append(sp)
        last = F.avg_pool2d(parts[3], 3, self.stride, 1) if self.first else parts[3]
        out = self.bn3(self.conv3(torch.cat([*outs, last], 1)))
        residual = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + residual)


class Res2NetV1b(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, 1, 1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, 1, 1, bias=False),
        )
        self.bn1 = nn.BatchNorm2d(64)
        c_in = 64
        for i, (planes, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))):
            down = nn.Sequential(
                nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False),
                nn.Conv2d(c_in, planes * 4, 1, bias=False),
                nn.BatchNorm2d(planes * 4),
            )
            layer = [Bottle2neck(c_in, planes, stride, down)]
            layer += [Bottle2neck(planes * 4, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            c_in = planes * 4
        self.fc = nn.Linear(2048, 1000)  # in the release, unused

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)


class BasicConv2d(nn.Module):
    """Conv (no bias) and BatchNorm; the published code builds a ReLU here but never applies it."""

    def __init__(self, c_in: int, c_out: int, k: int | tuple[int, int], padding: object = 0, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=padding, dilation=dilation, bias=False)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class RFBModified(nn.Module):
    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(c_in, c, 1))
        for n, k in ((1, 3), (2, 5), (3, 7)):
            branch = nn.Sequential(
                BasicConv2d(c_in, c, 1),
                BasicConv2d(c, c, (1, k), padding=(0, k // 2)),
                BasicConv2d(c, c, (k, 1), padding=(k // 2, 0)),
                BasicConv2d(c, c, 3, padding=k, dilation=k),
            )
            setattr(self, f"branch{n}", branch)
        self.conv_cat = BasicConv2d(4 * c, c, 3, padding=1)
        self.conv_res = BasicConv2d(c_in, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cat = torch.cat([getattr(self, f"branch{n}")(x) for n in range(4)], 1)
        return F.relu(self.conv_cat(cat) + self.conv_res(x))


def up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class Aggregation(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        for n in range(1, 5):
            setattr(self, f"conv_upsample{n}", BasicConv2d(c, c, 3, padding=1))
        self.conv_upsample5 = BasicConv2d(2 * c, 2 * c, 3, padding=1)
        self.conv_concat2 = BasicConv2d(2 * c, 2 * c, 3, padding=1)
        self.conv_concat3 = BasicConv2d(3 * c, 3 * c, 3, padding=1)
        self.conv4 = BasicConv2d(3 * c, 3 * c, 3, padding=1)
        self.conv5 = nn.Conv2d(3 * c, 1, 1)

    def forward(self, deep: torch.Tensor, mid: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        mid_1 = self.conv_upsample1(up2(deep)) * mid
        shallow_1 = self.conv_upsample2(up2(up2(deep))) * self.conv_upsample3(up2(mid)) * shallow
        mid_2 = self.conv_concat2(torch.cat([mid_1, self.conv_upsample4(up2(deep))], 1))
        shallow_2 = self.conv_concat3(torch.cat([shallow_1, self.conv_upsample5(up2(mid_2))], 1))
        return self.conv5(self.conv4(shallow_2))


def _scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear")


class OfficialPraNet(nn.Module):
    """``forward(x) -> (lateral_map_5, lateral_map_4, lateral_map_3, lateral_map_2)``."""

    def __init__(self, channel: int = 32) -> None:
        super().__init__()
        self.resnet = Res2NetV1b()
        self.rfb2_1 = RFBModified(512, channel)
        self.rfb3_1 = RFBModified(1024, channel)
        self.rfb4_1 = RFBModified(2048, channel)
        self.agg1 = Aggregation(channel)
        self.ra4_conv1 = BasicConv2d(2048, 256, 1)
        self.ra4_conv2 = BasicConv2d(256, 256, 5, padding=2)
        self.ra4_conv3 = BasicConv2d(256, 256, 5, padding=2)
        self.ra4_conv4 = BasicConv2d(256, 256, 5, padding=2)
        self.ra4_conv5 = BasicConv2d(256, 1, 1)
        self.ra3_conv1 = BasicConv2d(1024, 64, 1)
        self.ra3_conv2 = BasicConv2d(64, 64, 3, padding=1)
        self.ra3_conv3 = BasicConv2d(64, 64, 3, padding=1)
        self.ra3_conv4 = BasicConv2d(64, 1, 3, padding=1)
        self.ra2_conv1 = BasicConv2d(512, 64, 1)
        self.ra2_conv2 = BasicConv2d(64, 64, 3, padding=1)
        self.ra2_conv3 = BasicConv2d(64, 64, 3, padding=1)
        self.ra2_conv4 = BasicConv2d(64, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self.resnet
        x1 = r.layer1(r.stem(x))
        x2 = r.layer2(x1)
        x3 = r.layer3(x2)
        x4 = r.layer4(x3)
        ra5 = self.agg1(self.rfb4_1(x4), self.rfb3_1(x3), self.rfb2_1(x2))
        map5 = _scale(ra5, 8)
        crop4 = _scale(ra5, 0.25)
        y = self.ra4_conv1((1 - torch.sigmoid(crop4)).expand(-1, 2048, -1, -1) * x4)
        y = F.relu(self.ra4_conv4(F.relu(self.ra4_conv3(F.relu(self.ra4_conv2(y))))))
        y = self.ra4_conv5(y) + crop4
        map4 = _scale(y, 32)
        crop3 = _scale(y, 2)
        y = self.ra3_conv1((1 - torch.sigmoid(crop3)).expand(-1, 1024, -1, -1) * x3)
        y = F.relu(self.ra3_conv3(F.relu(self.ra3_conv2(y))))
        y = self.ra3_conv4(y) + crop3
        map3 = _scale(y, 16)
        crop2 = _scale(y, 2)
        y = self.ra2_conv1((1 - torch.sigmoid(crop2)).expand(-1, 512, -1, -1) * x2)
        y = F.relu(self.ra2_conv3(F.relu(self.ra2_conv2(y))))
        y = self.ra2_conv4(y) + crop2
        return map5, map4, map3, _scale(y, 8)
