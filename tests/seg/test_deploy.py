"""Deployment formats of a segmentation checkpoint: safetensors + JSON (read without unpickling) and ONNX."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from endoked.cli import main
from endoked.errors import DataFormatError
from endoked.seg.checkpoint import (
    build_model,
    checkpoint_dict,
    convert_checkpoint,
    load_model,
    read_checkpoint,
    save_checkpoint,
)


@pytest.fixture
def checkpoint(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    torch.manual_seed(0)
    model = build_model("test_efficientnet", channel=8, pretrained=False, decoder=getattr(request, "param", "endoked"))
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a lost buffer would show
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0.0, 0.1)
    content = checkpoint_dict(model, 64, {"epoch": 3, "val": {"mean_dice": 0.5}, "config": {"image_size": 64}})
    return save_checkpoint(tmp_path / "model.pt", content)


def test_safetensors_round_trip_never_unpickles(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("safetensors", reason="safetensors checkpoints need the interop extra")
    dest = tmp_path / "out" / "model.safetensors"
    assert main(["seg", "convert", str(checkpoint), "--out", str(dest)]) == 0
    config = json.loads((tmp_path / "out" / "model.json").read_text())
    assert config["format"] == "endoked-seg/1" and config["epoch"] == 3 and "state_dict" not in config

    ref_model, ref = load_model(checkpoint)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a safetensors checkpoint was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    model, got = load_model(dest)
    monkeypatch.undo()
    assert {k: v for k, v in got.items() if k != "state_dict"} == {k: v for k, v in ref.items() if k != "state_dict"}
    assert got["state_dict"].keys() == ref["state_dict"].keys()
    for key, tensor in ref["state_dict"].items():
        assert torch.equal(got["state_dict"][key], tensor), key
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.predict_logits(x), ref_model.predict_logits(x))
    # and back to a .pt file
    back = convert_checkpoint(dest, tmp_path / "back.pt")
    assert all(torch.equal(read_checkpoint(back)["state_dict"][k], v) for k, v in ref["state_dict"].items())


def test_broken_safetensors_checkpoints_are_named(checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("safetensors", reason="safetensors checkpoints need the interop extra")
    dest = convert_checkpoint(checkpoint, tmp_path / "m.safetensors")
    (tmp_path / "m.json").unlink()
    with pytest.raises(DataFormatError, match=r"m\.safetensors: its config m\.json is missing"):
        read_checkpoint(dest)
    (tmp_path / "m.json").write_text('{"format": "something-else"}')
    with pytest.raises(DataFormatError, match="not the config of a segmentation checkpoint"):
        read_checkpoint(dest)
    convert_checkpoint(checkpoint, dest)
    dest.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(DataFormatError, match=r"cannot read checkpoint .*m\.safetensors"):
        read_checkpoint(dest)
    with pytest.raises(DataFormatError, match=r"choose a \.safetensors or \.pt"):
        convert_checkpoint(checkpoint, tmp_path / "m.bin")


@pytest.mark.parametrize("checkpoint", ["endoked", "official"], indirect=True)
def test_onnx_export_matches_pytorch_with_a_dynamic_batch(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx = pytest.importorskip("onnx", reason="ONNX export needs the interop extra")
    ort = pytest.importorskip("onnxruntime", reason="checking the ONNX file needs onnxruntime")
    pytest.importorskip("onnxscript", reason="torch's ONNX exporter needs onnxscript")
    out = tmp_path / "model.onnx"
    assert main(["seg", "export-onnx", str(checkpoint), "--out", str(out)]) == 0
    assert "input (B, 3, 64, 64)" in capsys.readouterr().out
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["format"] == "endoked-seg-onnx/1" and meta["image_size"] == "64"
    assert meta["decoder"] == read_checkpoint(checkpoint)["decoder"]
    assert json.loads(meta["mean"]) == pytest.approx(read_checkpoint(checkpoint)["mean"])
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 64, 64]

    model, ckpt = load_model(checkpoint)
    mean = torch.tensor(ckpt["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(ckpt["std"]).view(1, 3, 1, 1)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            ref = model.predict_logits((x - mean) / std).numpy()
        logits, prob = session.run(["logits", "prob"], {"image": x.numpy()})
        assert logits.shape == (batch, 1, 64, 64)
        assert np.abs(logits - ref).max() < 1e-4
        np.testing.assert_allclose(prob, 1.0 / (1.0 + np.exp(-ref)), atol=1e-5)
