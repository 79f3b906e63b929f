from __future__ import annotations

import pytest
import timm
import torch

from endoked.errors import ConfigError
from endoked.seg.checkpoint import build_model
from endoked.seg.encoder import StagedEncoder

ENCODERS = {
    "tf_efficientnet_lite0": [24, 40, 112, 320],
    "mobilenetv2_100": [24, 32, 96, 320],
    "pvt_v2_b0": [32, 64, 160, 256],
    "pvt_v2_b2": [64, 128, 320, 512],
    "test_efficientnet": [24, 32, 48, 64],
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_forward_shapes_per_encoder(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, channel=8, pretrained=False).eval()
    x = torch.randn(2, 3, 64, 96)
    feats = model.encoder(x)
    assert model.encoder.channels == ENCODERS[name]
    assert [tuple(f.shape) for f in feats] == [
        (2, c, 64 // r, 96 // r) for c, r in zip(ENCODERS[name], (4, 8, 16, 32), strict=True)
    ]
    with torch.no_grad():
        p1, p2 = model(x)
        assert p1.shape == p2.shape == (2, 1, 64, 96)
        assert torch.allclose(model.predict_logits(x), p1 + p2)


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "pvt_v2_b0", "resnet18"])
def test_staged_encoder_matches_timm_intermediates(name: str) -> None:
    torch.manual_seed(0)
    ref = timm.create_model(name, pretrained=False).eval()
    wrapped = timm.create_model(name, pretrained=False)
    wrapped.load_state_dict(ref.state_dict())
    staged = StagedEncoder(wrapped, name).eval()
    indices = [i for i, e in enumerate(ref.feature_info) if e["reduction"] in (4, 8, 16, 32)]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = ref.forward_intermediates(x, indices=indices, intermediates_only=True)
        got = staged(x)
    assert len(got) == len(want) == 4
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert torch.allclose(g, w, atol=1e-5)


def test_freeze_and_cached_forward_agree() -> None:
    torch.manual_seed(0)
    model = build_model("test_efficientnet", channel=8, pretrained=False)
    model.encoder.freeze(2)
    model.train()
    assert not model.encoder.stages[0].training and not model.encoder.stages[1].training
    assert model.encoder.stages[2].training
    assert all(not p.requires_grad for s in model.encoder.stages[:2] for p in s.parameters())
    assert all(p.requires_grad for s in model.encoder.stages[2:] for p in s.parameters())
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    cached = model.encoder.frozen_features(x)
    assert len(cached) == 2
    with torch.no_grad():
        direct = model(x)
        via = model.forward_cached(cached, (64, 64))
    for a, b in zip(direct, via, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ConfigError):
        model.encoder.freeze(5)


def test_unknown_encoder_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="valid names"):
        build_model("no_such_net", pretrained=False)
