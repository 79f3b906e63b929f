"""Photometric jitter of the CAM head's training views."""

from __future__ import annotations

import torch
from torch import nn

from endoked.cam.model import CamNet
from endoked.cam.train import cache_features, photometric_jitter


def test_jitter_draws_one_exposure_per_image_within_its_bounds() -> None:
    x = torch.full((64, 3, 8, 8), 0.5)
    y = photometric_jitter(x, torch.Generator().manual_seed(0), brightness=0.35, contrast=0.3, gamma=0.35)
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    # a flat image keeps its contrast-free value: 0.5 ** gamma * brightness, one value per image
    per_image = y.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image))
    lo, hi = 0.5 ** float(torch.exp(torch.tensor(0.35))) * 0.65, 0.5 ** float(torch.exp(torch.tensor(-0.35))) * 1.35
    assert float(per_image.min()) >= lo - 1e-6 and float(per_image.max()) <= hi + 1e-6
    assert float(per_image[:, 0].std()) > 0.05  # the images differ
    # identity when every range is 0; the same seed gives the same draw
    z = torch.rand(4, 3, 8, 8)
    assert torch.allclose(photometric_jitter(z, torch.Generator(), 0.0, 0.0, 0.0), z, atol=1e-6)
    a = photometric_jitter(z, torch.Generator().manual_seed(3))
    b = photometric_jitter(z, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_jitter_keeps_structure_contrast_ordering() -> None:
    """Gamma, contrast and brightness are monotone per image: pixel order inside an image is kept (ties only
    where the clip at 1 flattens the top)."""
    z = torch.rand(8, 3, 6, 6) * 0.8 + 0.1
    y = photometric_jitter(z, torch.Generator().manual_seed(1), brightness=0.2, contrast=0.2, gamma=0.3)
    for i in range(8):
        order = torch.argsort(z[i].flatten())
        assert bool((torch.diff(y[i].flatten()[order]) >= 0).all())


class _Encoder(nn.Module):
    """A tiny two-level feature extractor (strides 2 and 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = self.a(x)
        return [a, self.b(a)]


def test_cache_holds_the_jittered_views() -> None:
    torch.manual_seed(0)
    net = CamNet(_Encoder(), [4, 6], [2, 4], levels=[1])
    images = [(torch.rand(3, 16, 16), float(i % 2)) for i in range(5)]
    plain = cache_features(net, images, lambda t: t, batch_size=2, flip=True)
    jit = cache_features(net, images, lambda t: t, batch_size=2, flip=True, jitter=2, seed=0)
    assert len(plain) == 10 and len(jit) == 20
    assert jit.labels.sum() == 2 * plain.labels.sum()
    # the first two views of every batch are the plain and flipped ones, as without jitter
    assert torch.equal(jit.fused[:4], plain.fused[:4])
    assert not torch.allclose(jit.fused[4:6].float(), plain.fused[:2].float())
    again = cache_features(net, images, lambda t: t, batch_size=2, flip=True, jitter=2, seed=0)
    assert torch.equal(again.fused, jit.fused)
