"""Published Polyp-PVT / EndoKED-SEG and PraNet weights: key layout, arithmetic, ``endoked predict``, training
init.

The weights are random values carrying exactly the official names and shapes; the reference networks
(:mod:`tests.seg.official_polyp_pvt`, :mod:`tests.seg.official_pranet`) are written from the official code,
independently of ``endoked.seg`` and of timm.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import endoked.seg.train as train_mod
from endoked.cli import main
from endoked.errors import ConfigError, DataFormatError
from endoked.seg import published
from endoked.seg.api import train_folder
from endoked.seg.checkpoint import (
    FORMAT,
    build_model,
    convert_checkpoint,
    load_model,
    load_weights,
    read_checkpoint,
)
from endoked.seg.model import PolypPVT
from endoked.seg.pranet import PraNet
from tests.seg.conftest import disk_pair, tiny_config, write_pranet
from tests.seg.official_polyp_pvt import OfficialPolypPVT, random_state
from tests.seg.official_pranet import OfficialPraNet

# typed from DengPingFan/Polyp-PVT lib/pvt.py (PolypPVT, channel 32) and lib/pvtv2.py (pvt_v2_b2: embed dims
# 64/128/320/512, mlp ratios 8/8/4/4, depths 3/4/6/3, sr ratios 8/4/2/1, qkv_bias, no classification head)
GOLDEN: dict[str, tuple[int, ...]] = {
    "backbone.patch_embed1.proj.weight": (64, 3, 7, 7),
    "backbone.patch_embed1.norm.bias": (64,),
    "backbone.patch_embed4.proj.weight": (512, 320, 3, 3),
    "backbone.block1.0.attn.sr.weight": (64, 64, 8, 8),
    "backbone.block1.2.mlp.dwconv.dwconv.weight": (512, 1, 3, 3),
    "backbone.block2.3.attn.kv.weight": (256, 128),
    "backbone.block3.5.mlp.fc1.weight": (1280, 320),
    "backbone.block4.2.attn.q.bias": (512,),
    "backbone.norm4.weight": (512,),
    "Translayer2_0.conv.weight": (32, 64, 1, 1),
    "Translayer3_1.conv.weight": (32, 320, 1, 1),
    "Translayer4_1.bn.running_var": (32,),
    "CFM.conv_upsample5.conv.weight": (64, 64, 3, 3),
    "CFM.conv_concat3.bn.weight": (96,),
    "CFM.conv4.conv.weight": (32, 96, 3, 3),
    "ca.fc1.weight": (4, 64, 1, 1),
    "sa.conv1.weight": (1, 2, 7, 7),
    "SAM.gcn.conv1.weight": (16, 16, 1),
    "SAM.gcn.conv2.weight": (16, 16, 1),
    "SAM.conv_extend.weight": (32, 16, 1, 1),
    "out_CFM.bias": (1,),
    "out_SAM.weight": (1, 32, 1, 1),
}
# backbone: 4 patch embeddings x 4 tensors + 13 blocks with spatial reduction x 20 + 3 without x 16 + 4 norms
# x 2 = 332; decoder: 12 conv-BN units x 6 + ca 2 + sa 1 + SAM 8 + two heads x 2 = 87
N_TENSORS = 419

# typed from DengPingFan/PraNet lib/PraNet_Res2Net.py (PraNet, channel 32) and lib/Res2Net_v1b.py
# (res2net50_v1b_26w_4s: deep stem 32-32-64, bottleneck widths 26/52/104/208 x 4 scales, classifier kept)
PRANET_GOLDEN: dict[str, tuple[int, ...]] = {
    "resnet.conv1.0.weight": (32, 3, 3, 3),
    "resnet.conv1.4.running_var": (32,),
    "resnet.conv1.6.weight": (64, 32, 3, 3),
    "resnet.layer1.0.conv1.weight": (104, 64, 1, 1),
    "resnet.layer1.0.convs.2.weight": (26, 26, 3, 3),
    "resnet.layer2.0.downsample.1.weight": (512, 256, 1, 1),
    "resnet.layer3.5.bns.1.bias": (104,),
    "resnet.layer4.2.conv3.weight": (2048, 832, 1, 1),
    "resnet.fc.weight": (1000, 2048),
    "rfb2_1.branch1.1.conv.weight": (32, 32, 1, 3),
    "rfb3_1.conv_res.conv.weight": (32, 1024, 1, 1),
    "rfb4_1.branch3.3.conv.weight": (32, 32, 3, 3),
    "rfb2_1.conv_cat.conv.weight": (32, 128, 3, 3),
    "agg1.conv4.conv.weight": (96, 96, 3, 3),
    "agg1.conv5.weight": (1, 96, 1, 1),
    "ra4_conv2.conv.weight": (256, 256, 5, 5),
    "ra4_conv5.bn.running_mean": (1,),
    "ra3_conv1.conv.weight": (64, 1024, 1, 1),
    "ra2_conv4.conv.weight": (1, 64, 3, 3),
}
# Res2Net: stem 3 convs + 2 BN x 5 + bn1 5 = 18, 16 bottlenecks x 30 + 4 shortcuts x 6 = 504, fc 2; decoder:
# 3 RFBs x 15 conv-BN units x 6 = 270, aggregation 8 x 6 + conv5 2 = 50, reverse attention 13 x 6 = 78
N_PRANET_TENSORS = 922


@pytest.fixture(scope="module")
def official() -> tuple[OfficialPolypPVT, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    ref = OfficialPolypPVT().eval()
    state = random_state(ref, seed=1)
    state["out_SAM.weight"] *= 0.02  # the SAM features of random weights are large: keep sigmoid(P1 + P2) unsaturated
    ref.load_state_dict(state, strict=True)
    return ref, state


@pytest.fixture(scope="module")
def official_pth(official: tuple[OfficialPolypPVT, dict[str, torch.Tensor]], tmp_path_factory: Any) -> Path:
    path = Path(tmp_path_factory.mktemp("published")) / "PolypPVT.pth"
    torch.save(official[1], path)  # as the official Train.py: torch.save(model.state_dict(), ...)
    return path


@pytest.fixture(scope="module")
def ours(official_pth: Path) -> PolypPVT:
    model, _ = load_model(official_pth)
    assert isinstance(model, PolypPVT)
    return model


@pytest.fixture(scope="module")
def pranet() -> tuple[OfficialPraNet, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    ref = OfficialPraNet().eval()
    state = random_state(ref, seed=4)
    ref.load_state_dict(state, strict=True)
    return ref, state


@pytest.fixture(scope="module")
def pranet_pth(pranet: tuple[OfficialPraNet, dict[str, torch.Tensor]], tmp_path_factory: Any) -> Path:
    path = Path(tmp_path_factory.mktemp("published")) / "PraNet-19.pth"
    torch.save(pranet[1], path)  # as the official MyTrain.py: torch.save(model.state_dict(), ...)
    return path


def test_official_layout_names_and_shapes(
    official: tuple[OfficialPolypPVT, dict[str, torch.Tensor]], ours: PolypPVT
) -> None:
    ref_shapes = {k: tuple(v.shape) for k, v in official[0].state_dict().items()}
    assert len(ref_shapes) == N_TENSORS
    assert {k: ref_shapes.get(k) for k in GOLDEN} == GOLDEN
    mapped = {published.POLYP_PVT.to_official(k): tuple(v.shape) for k, v in ours.state_dict().items()}
    assert mapped == ref_shapes  # every tensor of ours has its official counterpart, and the reverse
    assert all(
        published.POLYP_PVT.from_official(str(published.POLYP_PVT.to_official(k))) == k for k in ours.state_dict()
    )
    assert published.POLYP_PVT.from_official("backbone.block2.1.mlp.dwconv.dwconv.bias") == (
        "encoder.stages.1.0.blocks.1.mlp.dwconv.bias"
    )
    assert published.POLYP_PVT.from_official("backbone.head.weight") is None


def test_published_weights_compute_the_official_logits(
    official: tuple[OfficialPolypPVT, dict[str, torch.Tensor]], official_pth: Path, ours: PolypPVT
) -> None:
    ckpt = read_checkpoint(official_pth)
    assert (ckpt["encoder"], ckpt["channel"], ckpt["decoder"], ckpt["image_size"]) == ("pvt_v2_b2", 32, "official", 352)
    assert ckpt["mean"] == [0.485, 0.456, 0.406] and ckpt["std"] == [0.229, 0.224, 0.225]
    ref = official[0]
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        want = ref.double()(x)
        got = ours.double()(x)
        ours_decoder = build_model("pvt_v2_b2", 32, pretrained=False).eval()
        load_weights(ours_decoder, ckpt, official_pth)
        other = ours_decoder.double()(x)
        ref.float(), ours.float()
    for w, g, o in zip(want, got, other, strict=True):
        assert w.shape == g.shape == (2, 1, 64, 96)
        assert float(w.std()) > 0.01
        assert torch.allclose(g, w, rtol=0.0, atol=1e-5)
        assert float((o - w).abs().max()) > 1e-3  # 100 x the tolerance: the 'endoked' arithmetic is another network


def test_dataparallel_and_wrapped_state_dicts_are_unwrapped(tmp_path: Path) -> None:
    t = torch.zeros(2)
    assert published.tensor_state({"state_dict": {"module.ca.fc1.weight": t}, "epoch": 3}) == {"ca.fc1.weight": t}
    assert published.tensor_state({"model": {"out_SAM.bias": t}}) == {"out_SAM.bias": t}
    assert published.tensor_state(t) is None and published.tensor_state({"epoch": 3}) is None
    path = tmp_path / "partial.pth"
    torch.save({"model": {"module.out_CFM.weight": torch.zeros(1, 32, 1, 1), "module.out_CFM.bias": t[:1]}}, path)
    ckpt = read_checkpoint(path)
    assert ckpt["layout"] == "Polyp-PVT" and set(ckpt["state_dict"]) == {"head_cfm.weight", "head_cfm.bias"}
    with pytest.raises(
        DataFormatError, match=r"partial\.pth does not fit .* 417 missing \(first: backbone\.patch_embed1"
    ):
        load_model(path)


def test_foreign_files_name_the_file_and_the_accepted_layouts(tmp_path: Path) -> None:
    other = tmp_path / "unet.pth"
    torch.save({"conv.weight": torch.zeros(3), "fc.bias": torch.zeros(3)}, other)
    with pytest.raises(DataFormatError) as err:
        read_checkpoint(other)
    msg = str(err.value)
    assert "unet.pth" in msg and FORMAT in msg and "Polyp-PVT" in msg
    assert "unexpected: conv.weight, fc.bias" in msg
    assert "missing for Polyp-PVT: backbone.patch_embed1.proj.weight, backbone.block1.0.attn.q.weight" in msg
    assert "missing for PraNet: resnet.conv1.0.weight, resnet.layer4.2.convs.2.weight" in msg
    plain = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), plain)
    with pytest.raises(DataFormatError, match=r"tensor\.pth is not .*Tensor without tensors.*accepted are"):
        read_checkpoint(plain)
    extra = tmp_path / "with_head.pth"
    torch.save(
        {
            "backbone.head.weight": torch.zeros(2),
            "out_SAM.bias": torch.zeros(1),
            "SAM.conv_extend.weight": torch.zeros(32, 16, 1, 1),
        },
        extra,
    )
    with pytest.raises(DataFormatError, match=r"Polyp-PVT layout but 1 of its tensors .*first: backbone\.head\.weight"):
        read_checkpoint(extra)


def test_shape_errors_use_the_official_names(official: tuple[OfficialPolypPVT, dict[str, torch.Tensor]]) -> None:
    state = dict(official[1])
    state["Translayer2_0.conv.weight"] = torch.zeros(32, 48, 1, 1)
    content = {"format": FORMAT, **published.to_checkpoint(published.POLYP_PVT, state)}
    model = build_model("pvt_v2_b2", 32, pretrained=False, decoder="official")
    with pytest.raises(
        DataFormatError, match=r"1 of another shape \(first: Translayer2_0\.conv\.weight \(32, 48, 1, 1\)"
    ):
        load_weights(model, content, "x.pth")


@pytest.mark.parametrize(
    ("release", "log"),
    [
        ("official", "published Polyp-PVT weights (official key layout, 419 tensors)"),
        ("pranet", "published PraNet weights (official key layout, 922 tensors)"),
    ],
)
def test_endoked_predict_runs_a_published_checkpoint(
    release: str, log: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    ref = request.getfixturevalue(release)[0]
    pth = request.getfixturevalue(f"{release}_pth")
    (tmp_path / "imgs").mkdir()
    images = {"a": disk_pair((50, 70), 0)[0], "b": disk_pair((40, 40), 1)[0]}
    for stem, img in images.items():
        Image.fromarray(img).save(tmp_path / "imgs" / f"{stem}.png")
    with caplog.at_level(logging.INFO, logger="endoked"):
        args = ["predict", "--model", str(pth), "--images", str(tmp_path / "imgs")]
        code = main(["--no-progress", *args, "--out", str(tmp_path / "pred"), "--device", "cpu"])
    assert code == 0
    assert log in caplog.text
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    for stem, img in images.items():
        x = torch.from_numpy(cv2.resize(img, (352, 352), interpolation=cv2.INTER_LINEAR)).permute(2, 0, 1)[None]
        with torch.no_grad():
            out = ref((x.float() / 255.0 - mean) / std)
        logits = out[0] + out[1] if release == "official" else out[3]  # the official test scripts: P1 + P2, res2
        up = F.interpolate(logits, size=img.shape[:2], mode="bilinear", align_corners=False)
        want = np.round(torch.sigmoid(up)[0, 0].numpy() * 255.0)
        got = np.asarray(Image.open(tmp_path / "pred" / f"{stem}.png")).astype(np.float64)
        assert got.shape == img.shape[:2]
        assert np.abs(got - want).max() <= 1.0 and want.std() > 5.0


def test_pranet_layout_names_and_shapes(pranet: tuple[OfficialPraNet, dict[str, torch.Tensor]]) -> None:
    ref_shapes = {k: tuple(v.shape) for k, v in pranet[0].state_dict().items()}
    assert len(ref_shapes) == N_PRANET_TENSORS
    assert {k: ref_shapes.get(k) for k in PRANET_GOLDEN} == PRANET_GOLDEN
    ours = {k: tuple(v.shape) for k, v in PraNet(32).state_dict().items()}
    assert ours == ref_shapes  # the published names, kept as they are
    assert published.detect(pranet[1]) is published.PRANET


def test_published_pranet_computes_the_official_maps(
    pranet: tuple[OfficialPraNet, dict[str, torch.Tensor]], pranet_pth: Path
) -> None:
    model, ckpt = load_model(pranet_pth)
    assert isinstance(model, PraNet)
    assert (ckpt["network"], ckpt["encoder"], ckpt["channel"], ckpt["image_size"]) == ("pranet", "res2net50d", 32, 352)
    ref = pranet[0]
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        want = ref.double()(x)
        got = model.double()(x)
        last = model.logits(x)
        ref.float(), model.float()
    for w, g in zip(want, got, strict=True):
        assert g.shape == w.shape == (2, 1, 64, 96) and float(w.std()) > 0.1
        assert torch.allclose(g, w, rtol=0.0, atol=1e-5)
    assert torch.allclose(last, want[3], rtol=0.0, atol=1e-5)


def test_pranet_weights_cannot_initialise_training(pranet_pth: Path) -> None:
    with pytest.raises(ConfigError, match=r"PraNet-19\.pth holds pranet weights.*network trained here is Polyp-PVT"):
        train_mod.init_architecture(tiny_config(), read_checkpoint(pranet_pth), pranet_pth)


def test_convert_writes_our_format_with_the_official_arithmetic(
    official_pth: Path, ours: PolypPVT, tmp_path: Path
) -> None:
    dest = convert_checkpoint(official_pth, tmp_path / "model.pt")
    model, ckpt = load_model(dest)
    assert ckpt["format"] == FORMAT and ckpt["decoder"] == "official" and model.decoder == "official"
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(model.predict_logits(x), ours.predict_logits(x))


def _first_step_weights(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, torch.Tensor]]:
    """Records the network's weights right before its first optimiser step."""
    seen: list[dict[str, torch.Tensor]] = []
    step = train_mod.SegTask._step

    def spy(self: train_mod.SegTask, *args: Any, **kwargs: Any) -> float:
        if not seen:
            seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return step(self, *args, **kwargs)

    monkeypatch.setattr(train_mod.SegTask, "_step", spy)
    return seen


def test_training_starts_from_a_published_checkpoint(
    official: tuple[OfficialPolypPVT, dict[str, torch.Tensor]],
    official_pth: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = write_pranet(tmp_path / "disks", 3)
    seen = _first_step_weights(monkeypatch)
    cfg = tiny_config(optim__epochs=1, optim__batch_size=2, val_fraction=0.0, model__init=str(official_pth))
    with caplog.at_level(logging.INFO, logger="endoked"):
        result = train_folder(data, tmp_path / "out", cfg, seed=0, progress=False)
    assert (
        "model.backbone test_efficientnet -> pvt_v2_b2, model.channel 8 -> 32, model.decoder endoked -> official"
        in (caplog.text)
    )
    assert set(seen[0]) == {published.POLYP_PVT.from_official(k) for k in official[1]}
    for key, value in official[1].items():
        assert torch.equal(seen[0][str(published.POLYP_PVT.from_official(key))], value), key
    ckpt = read_checkpoint(result.checkpoint)
    assert (ckpt["encoder"], ckpt["channel"], ckpt["decoder"]) == ("pvt_v2_b2", 32, "official")
    assert ckpt["config"]["model"]["backbone"] == "pvt_v2_b2"
    moved = [k for k, v in ckpt["state_dict"].items() if not torch.equal(v, seen[0][k])]
    assert moved  # it trained


def test_seg_train_init_from_our_own_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_pranet(tmp_path / "disks", 4)
    first = train_folder(data, tmp_path / "a", tiny_config(optim__epochs=1, val_fraction=0.0), seed=0, progress=False)
    init = read_checkpoint(first.checkpoint)["state_dict"]
    seen = _first_step_weights(monkeypatch)
    sets = {
        "seg.model.backbone": "test_efficientnet",
        "seg.model.pretrained": "false",
        "seg.model.channel": "16",
        "seg.image_size": "64",
        "seg.optim.epochs": "1",
        "seg.optim.batch_size": "4",
        "seg.val_fraction": "0",
        "seg.augment.scales": "[1.0]",
    }
    args = ["seg", "train", "--data", str(data), "--out", str(tmp_path / "b"), "--init", str(first.checkpoint)]
    code = main(["--no-progress", *args, *[f"--set={k}={v}" for k, v in sets.items()], "--device", "cpu"])
    assert code == 0
    assert set(seen[0]) == set(init) and all(torch.equal(seen[0][k], v) for k, v in init.items())
    ckpt = read_checkpoint(tmp_path / "b" / "model.pt")
    assert ckpt["channel"] == 8 and ckpt["config"]["model"]["init"] == str(first.checkpoint)
