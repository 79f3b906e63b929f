from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from endoked.cli import main
from endoked.seg.checkpoint import build_model, checkpoint_dict, save_checkpoint
from endoked.seg.predict import Predictor, predict_folder
from tests.seg.conftest import disk_pair


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("test_efficientnet", channel=8, pretrained=False)
    return save_checkpoint(tmp_path / "model.pt", checkpoint_dict(model, 64, {"epoch": 1}))


def _images(folder: Path) -> dict[str, tuple[int, int]]:
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {"a": (50, 70), "b": (33, 41), "c": (64, 64)}
    for i, (stem, (h, w)) in enumerate(sizes.items()):
        img, _ = disk_pair((h, w), i)
        Image.fromarray(img).save(folder / f"{stem}.{'jpg' if stem == 'a' else 'png'}")
    return sizes


@pytest.mark.parametrize("tta", [False, True])
def test_predict_writes_maps_at_input_size(checkpoint: Path, tmp_path: Path, tta: bool) -> None:
    sizes = _images(tmp_path / "imgs")
    summary = predict_folder(
        checkpoint, tmp_path / "imgs", tmp_path / "pred", device="cpu", tta_flip=tta, batch_size=2, progress=False
    )
    assert not summary.errors and len(summary.written) == 3
    for stem, (h, w) in sizes.items():
        with Image.open(tmp_path / "pred" / f"{stem}.png") as im:
            assert im.mode == "L" and im.size == (w, h)


def test_predict_batches_agree_and_tta_is_flip_symmetric(checkpoint: Path) -> None:
    pred = Predictor.from_checkpoint(checkpoint, "cpu")
    imgs = [disk_pair((40, 52), s)[0] for s in range(3)]
    one = [pred.predict([im])[0] for im in imgs]
    batch = pred.predict(imgs)
    for a, b in zip(one, batch, strict=True):
        assert a.shape == (40, 52) and a.dtype == np.float32
        assert np.allclose(a, b, atol=1e-5) and a.min() >= 0.0 and a.max() <= 1.0
    tta = Predictor.from_checkpoint(checkpoint, "cpu", tta_flip=True)
    img = imgs[0]
    assert np.allclose(tta.predict([img])[0], tta.predict([img[:, ::-1]])[0][:, ::-1], atol=1e-5)


def test_unreadable_image_is_reported_not_fatal(checkpoint: Path, tmp_path: Path) -> None:
    _images(tmp_path / "imgs")
    (tmp_path / "imgs" / "broken.png").write_bytes(b"not a png")
    code = main(
        [
            "--no-progress",
            "predict",
            "--model",
            str(checkpoint),
            "--images",
            str(tmp_path / "imgs"),
            "--out",
            str(tmp_path / "pred"),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    errors = [json.loads(line) for line in (tmp_path / "pred" / "errors.jsonl").read_text().splitlines()]
    assert [e["name"] for e in errors] == ["broken"]
    assert sorted(p.stem for p in (tmp_path / "pred").glob("*.png")) == ["a", "b", "c"]


def test_cli_exit_codes_for_bad_input(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _images(tmp_path / "imgs")
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.pt").write_bytes(b"junk")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    cases = [
        ["predict", "--model", str(tmp_path / "missing.pt"), "--images", str(tmp_path / "imgs"), "--out", "x"],
        ["predict", "--model", str(tmp_path / "junk.pt"), "--images", str(tmp_path / "imgs"), "--out", "x"],
        ["predict", "--model", str(tmp_path / "other.pt"), "--images", str(tmp_path / "imgs"), "--out", "x"],
        ["predict", "--model", str(checkpoint), "--images", str(tmp_path / "empty"), "--out", "x"],
        ["predict", "--model", str(checkpoint), "--images", str(tmp_path / "nowhere"), "--out", "x"],
        ["seg", "train", "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "o")],
        ["seg", "train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "seg.optim.epochs=0"],
        ["seg", "train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "seg.nonsense=1"],
        ["seg", "train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--device", "quantum"],
    ]
    for argv in cases:
        assert main(["--no-progress", *argv]) == 2, argv
        assert "error" in capsys.readouterr().err.lower()
    assert main(["predict", "--images", str(tmp_path / "imgs")]) == 2  # missing required options


def test_seg_train_cli_end_to_end_and_dry_run(disks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = [
        "--set",
        "seg.model.backbone=test_efficientnet",
        "--set",
        "seg.model.pretrained=false",
        "--set",
        "seg.model.channel=8",
        "--set",
        "seg.image_size=64",
        "--set",
        "seg.augment.scales=[1.0]",
        "--set",
        "seg.optim.epochs=1",
        "--set",
        "seg.optim.batch_size=4",
    ]
    assert main(["seg", "train", "--data", str(disks), "--out", str(tmp_path / "o"), "--dry-run", *common]) == 0
    assert "image_size: 64" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()
    assert (
        main(
            [
                "--no-progress",
                "seg",
                "train",
                "--data",
                str(disks),
                "--out",
                str(tmp_path / "o"),
                "--device",
                "cpu",
                *common,
            ]
        )
        == 0
    )
    assert "checkpoint:" in capsys.readouterr().out
    assert (
        main(
            [
                "--no-progress",
                "predict",
                "--model",
                str(tmp_path / "o" / "model.pt"),
                "--images",
                str(disks / "images"),
                "--out",
                str(tmp_path / "p"),
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "p").glob("*.png"))) == 8


def test_predict_logs_the_checkpoint_load_not_random_init(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _images(tmp_path / "imgs")
    caplog.set_level("DEBUG", logger="endoked")
    argv = ["--no-progress", "predict", "--model", str(checkpoint), "--images", str(tmp_path / "imgs")]
    assert main([*argv, "--out", str(tmp_path / "pred"), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in (err, logged):
        assert "randomly initialised" not in text
        assert f"seg model: {len(torch.load(checkpoint)['state_dict'])} tensors loaded from checkpoint" in text
        assert str(checkpoint) in text and "encoder test_efficientnet, epoch 1" in text
