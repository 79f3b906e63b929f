from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

import endoked.seg.train as train_mod
from endoked.imaging import read_mask_u8, read_rgb
from endoked.seg.api import train_folder
from endoked.seg.checkpoint import read_checkpoint
from endoked.seg.data import list_image_files
from endoked.seg.predict import Predictor
from tests.seg.conftest import tiny_config


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(1, int(a.sum()) + int(b.sum()))


def test_tiny_run_overfits_its_training_images(disks: Path, tmp_path: Path) -> None:
    cfg = tiny_config(optim__epochs=25, val_fraction=0.0, optim__lr=1e-2, optim__batch_size=4, model__channel=16)
    t0 = time.perf_counter()
    result = train_folder(disks, tmp_path / "out", cfg, seed=0, progress=False)
    assert time.perf_counter() - t0 < 90  # about 35 s on a loaded 2-core CPU
    assert result.n_train == 8 and result.n_val == 0 and len(result.history) == 25
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    predictor = Predictor.from_checkpoint(result.checkpoint, "cpu")
    images = list_image_files(disks / "images")
    probs = predictor.predict([read_rgb(p) for p in images])
    dices = [
        _dice(p >= 0.5, read_mask_u8(disks / "masks" / p_img.name) > 0) for p, p_img in zip(probs, images, strict=True)
    ]
    assert float(np.mean(dices)) > 0.9, dices
    for name in ("model.pt", "last.pt", "history.json", "curve.png", "summary.json"):
        assert (tmp_path / "out" / name).is_file()


@pytest.mark.parametrize(
    "changes",
    [{}, {"model__freeze_stages": 2, "model__cache_views": 2, "augment__hflip": 0.5}],
    ids=["end-to-end", "frozen-cached"],
)
def test_resume_reproduces_the_same_checkpoint(
    disks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, object]
) -> None:
    cfg = tiny_config(
        optim__epochs=3,
        val_fraction=0.25,
        augment__scales=[0.5, 1.0],
        augment__scale_mode="random",
        augment__rotate90=0.5,
        augment__crop_scale=0.8,
        augment__color_jitter=0.2,
        optim__grad_clip=0.5,
        **changes,
    )
    straight = train_folder(disks, tmp_path / "a", cfg, seed=3, progress=False)

    real = train_mod._epoch_generator

    def interrupt(seed: int, epoch: int, salt: int = 0) -> torch.Generator:
        if epoch == 3 and salt == 0:  # start of the third epoch: two epochs are saved
            raise KeyboardInterrupt
        return real(seed, epoch, salt)

    monkeypatch.setattr(train_mod, "_epoch_generator", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_folder(disks, tmp_path / "b", cfg, seed=3, progress=False)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["epoch"] == 2
    monkeypatch.setattr(train_mod, "_epoch_generator", real)
    resumed = train_folder(disks, tmp_path / "b", cfg, seed=3, progress=False)

    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    a, b = read_checkpoint(straight.checkpoint), read_checkpoint(resumed.checkpoint)
    assert a["epoch"] == b["epoch"]
    for key, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][key]), key
    last_a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    last_b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(last_a[k], last_b[k]) for k in last_a)


def test_changed_config_starts_afresh(disks: Path, tmp_path: Path) -> None:
    cfg = tiny_config(optim__epochs=1)
    train_folder(disks, tmp_path / "o", cfg, seed=0, progress=False)
    again = train_folder(disks, tmp_path / "o", tiny_config(optim__epochs=2), seed=0, progress=False)
    assert [h["epoch"] for h in again.history] == [1, 2]
    # same config again: nothing left to train, history kept
    same = train_folder(disks, tmp_path / "o", tiny_config(optim__epochs=2), seed=0, progress=False)
    assert [h["epoch"] for h in same.history] == [1, 2]


def test_time_budget_stops_after_the_first_epoch_and_validates_it(disks: Path, tmp_path: Path) -> None:
    cfg = tiny_config(optim__epochs=3, optim__val_every=5, optim__max_minutes=1e-9)
    result = train_folder(disks, tmp_path / "o", cfg, seed=0, progress=False)
    assert result.stopped_early and [h["epoch"] for h in result.history] == [1]
    assert "val_mean_dice" in result.history[0]  # the stopping epoch is validated even off the val_every grid
    assert result.best_epoch == 1 and read_checkpoint(result.checkpoint)["epoch"] == 1
    assert torch.load(tmp_path / "o" / "last.pt", weights_only=True)["epoch"] == 1
