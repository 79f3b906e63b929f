"""timm weights already in a local Hugging Face hub cache are found without network; HF_HUB_OFFLINE is obeyed."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from endoked.backbones import backbone_info, create_backbone
from endoked.backbones.weights import WEIGHTS_ENV, resolve_weights
from endoked.errors import WeightsNotFoundError


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face hub cache and torch hub folder, no ENDOKED_WEIGHTS."""
    constants = pytest.importorskip("huggingface_hub.constants", reason="the hub cache lookup needs huggingface_hub")
    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return cache


def _put_in_cache(cache: Path, repo: str, state: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text("0123abcd")
    snap = root / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    return snap / "model.safetensors"


def test_weights_in_the_hf_cache_are_used(hub_cache: Path) -> None:
    pytest.importorskip("safetensors", reason="writing the fake cache entry needs safetensors")
    torch.manual_seed(3)
    state = timm.create_model("test_efficientnet", pretrained=False).state_dict()
    repo = timm.models.get_pretrained_cfg("test_efficientnet").hf_hub_id
    path = _put_in_cache(hub_cache, repo, state)
    model = create_backbone("test_efficientnet", pretrained=True)
    assert model.weights_source.kind == "hf-cache" and model.weights_source.path == path
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[key]), key


def test_hf_hub_offline_forbids_the_download(hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = backbone_info("test_efficientnet")
    assert resolve_weights(info, allow_download=True).kind == "download"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_weights(info, allow_download=True)
    with pytest.raises(WeightsNotFoundError, match="available offline"):
        resolve_weights(info, allow_download=False)
