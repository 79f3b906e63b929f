"""CAM methods, pooling, test-time aggregation and head training on a tiny hand-built model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from endoked.cam.methods import METHODS, activation_maps, tta_maps
from endoked.cam.model import CamNet, pool_logit_map
from endoked.cam.train import FeatureCache, fit_head
from endoked.errors import ConfigError


class _Info:
    def __init__(self, names: list[str]) -> None:
        self._names = names

    def module_name(self) -> list[str]:
        return self._names


class TinyEncoder(nn.Module):
    """Level 0 = the input (3 channels, stride 1); level 1 = its 2×2 average (stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(nn.Identity(), nn.AvgPool2d(2))
        self.feature_info = _Info(["blocks.0", "blocks.1"])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f0 = self.blocks[0](x)
        return [f0, self.blocks[1](f0)]


def tiny_net(levels: tuple[int, ...] = (1,), pool: str = "gap") -> CamNet:
    """A linear head that responds to channel 0 only."""
    net = CamNet(TinyEncoder(), [3, 3], [1, 2], levels=levels, head="linear", pool=pool)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.weight[0, 0] = 1.0
        net.head.bias.zero_()
    return net.eval()


def spot_image(y: int, x: int, size: int = 16) -> torch.Tensor:
    """Channel 0 high on a 4×4 square at (y, x); channel 1 high elsewhere (a distractor)."""
    img = torch.zeros(1, 3, size, size)
    img[0, 0, y : y + 4, x : x + 4] = 1.0
    img[0, 1] = 1.0
    img[0, 1, y : y + 4, x : x + 4] = 0.0
    return img


def peak(m: torch.Tensor) -> tuple[int, int]:
    idx = int(torch.argmax(m))
    return divmod(idx, m.shape[-1])


@pytest.mark.parametrize("method", METHODS)
def test_every_method_peaks_on_the_channel_the_head_reads(method: str) -> None:
    net = tiny_net()
    maps, logits = activation_maps(net, spot_image(4, 8), method, layers=[1] if method != "layercam" else [0])
    assert maps.ndim == 3 and maps.shape[0] == 1 and bool((maps >= 0).all())
    y, x = peak(maps[0])
    stride = 16 // maps.shape[-1]
    assert 4 <= (y + 0.5) * stride <= 8 and 8 <= (x + 0.5) * stride <= 12
    assert logits.shape == (1,)
    # GAP + linear: the image logit is the mean of the channel-0 map, 16 / 256.
    assert float(logits[0]) == pytest.approx(16 / 256)


def test_plain_cam_equals_weighted_feature_sum() -> None:
    net = tiny_net()
    img = torch.rand(2, 3, 8, 8)
    maps, _ = activation_maps(net, img, "cam")
    expected = nn.functional.avg_pool2d(img, 2)[:, 0]
    torch.testing.assert_close(maps, expected)


def test_gradcam_of_gap_linear_head_is_the_cam_up_to_scale() -> None:
    net = tiny_net()
    img = torch.rand(1, 3, 8, 8)
    cam, _ = activation_maps(net, img, "cam")
    grad, _ = activation_maps(net, img, "gradcam", layers=[1])
    torch.testing.assert_close(grad[0], cam[0] / cam[0].max())


def test_unknown_method_and_missing_feature_info() -> None:
    net = tiny_net()
    with pytest.raises(ConfigError, match="gradcam"):
        activation_maps(net, spot_image(0, 0), "nope")
    plain = CamNet(nn.Sequential(), [3], [1], levels=(0,))

    class ListEncoder(nn.Module):
        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            return [x]

    plain.encoder = ListEncoder()
    with pytest.raises(ConfigError, match="feature_info"):
        activation_maps(plain, spot_image(0, 0), "gradcam")


def test_tta_flip_and_scales_keep_the_peak_in_place() -> None:
    net = tiny_net()
    img = spot_image(2, 2)
    maps, probs = tta_maps(net, img, "cam", scales=(0.5, 1.0, 1.5), flip=True)
    # aggregated at the resolution of the largest view (views are at least 32 px: 32 px / stride 2)
    assert maps.shape == (1, 16, 16)
    y, x = peak(maps[0])
    assert y <= 5 and x <= 5  # top-left (the spot covers 2..5 of 16), not mirrored to the right
    assert 0 < float(probs[0]) < 1
    maps2, _ = tta_maps(net, img, "cam", scales=(1.0,), flip=False, out_size=(4, 6))
    assert maps2.shape == (1, 4, 6)
    with pytest.raises(ConfigError):
        tta_maps(net, img, "cam", scales=())


def test_pooling_orders_mean_lse_max() -> None:
    m = torch.tensor([[[[0.0, 1.0], [2.0, 5.0]]]])
    gap, mx = float(pool_logit_map(m, "gap")), float(pool_logit_map(m, "max"))
    lse = float(pool_logit_map(m, "lse", lse_r=2.0))
    assert gap == pytest.approx(2.0) and mx == pytest.approx(5.0)
    expected = (math.log(sum(math.exp(2 * v) for v in (0, 1, 2, 5))) - math.log(4)) / 2
    assert lse == pytest.approx(expected) and gap < lse < mx
    assert float(pool_logit_map(m, "topk", topk=0.5)) == pytest.approx(3.5)
    with pytest.raises(ConfigError):
        pool_logit_map(m, "median")


@pytest.mark.parametrize("pool", ["gap", "lse"])
def test_fit_head_learns_to_localise_the_positive_channel(pool: str) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    feats, labels = [], []
    for i in range(40):
        f = torch.rand(3, 4, 4) * 0.3
        if i % 2 == 0:
            y, x = rng.integers(0, 4, size=2)
            f[2, y, x] += 2.0  # positives: one location with a high channel 2
        feats.append(f)
        labels.append(float(i % 2 == 0))
    net = CamNet(TinyEncoder(), [3, 3], [1, 2], levels=(1,), head="mlp", hidden=8, pool=pool)
    cache = FeatureCache(torch.stack(feats).half(), torch.tensor(labels))
    history = fit_head(net, cache, epochs=60, lr=0.03, batch_size=8, feature_dropout=0.0)
    assert history[-1] < 0.7 * history[0]
    with torch.no_grad():
        logit_map = net.head(torch.stack(feats[:2]))
        probs = torch.sigmoid(net.pooled(logit_map))
    assert float(probs[0]) > 0.5 > float(probs[1])
    pos_map = logit_map[0, 0]
    assert peak(pos_map) == tuple(int(v) for v in torch.nonzero(feats[0][2] > 1.0)[0])


def test_fit_head_needs_both_classes() -> None:
    from endoked.errors import DataFormatError

    net = CamNet(TinyEncoder(), [3, 3], [1, 2], levels=(1,))
    with pytest.raises(DataFormatError, match="both classes"):
        fit_head(net, FeatureCache(torch.zeros(4, 3, 2, 2), torch.ones(4)), epochs=1)


def test_frozen_encoder_stays_frozen_and_in_eval() -> None:
    enc = nn.Sequential(nn.BatchNorm2d(3))
    net = CamNet(enc, [3], [1], levels=(0,))
    net.train()
    assert not enc.training and all(not p.requires_grad for p in enc.parameters())
    assert net.stride == 1


class ConvEncoder(nn.Module):
    """Two random conv levels with batch norm (eval statistics), strides 1 and 2, for batching checks."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()),
            nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU()),
        )
        self.feature_info = _Info(["blocks.0", "blocks.1"])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f0 = self.blocks[0](x)
        return [f0, self.blocks[1](f0)]


@pytest.mark.parametrize("method", METHODS)
def test_batched_flips_equal_two_passes(method: str) -> None:
    torch.manual_seed(0)
    enc = ConvEncoder()
    for bn in (enc.blocks[0][1], enc.blocks[1][1]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    net = CamNet(enc, [4, 6], [1, 2], levels=(0, 1), head="linear").eval()
    x = torch.randn(3, 3, 20, 28)
    one, p_one = tta_maps(net, x, method, scales=(0.75, 1.0, 1.5), flip=True, batch_flips=True)
    two, p_two = tta_maps(net, x, method, scales=(0.75, 1.0, 1.5), flip=True, batch_flips=False)
    assert one.shape == two.shape and one.shape[0] == 3
    assert float(one.abs().max()) > 0
    torch.testing.assert_close(one, two, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(p_one, p_two, atol=1e-5, rtol=1e-5)
    # flipping matters: the flip-aggregated map differs from the map of the originals alone
    plain, _ = tta_maps(net, x, method, scales=(0.75, 1.0, 1.5), flip=False)
    assert float((plain - one).abs().max()) > 1e-3
