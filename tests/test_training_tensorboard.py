"""The shared training loop writes TensorBoard event files when asked (off by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from endoked.training import LoopState, TrainLoop, TrainTask


class _Task(TrainTask):
    validates = True

    def train_epoch(self, epoch: int, progress: Any) -> dict[str, Any]:
        progress.update(1)
        return {"epoch": epoch + 1, "loss": 1.0 / (epoch + 1), "lr": 0.1}

    def validate(self, epoch: int, final: bool) -> dict[str, Any] | None:
        return {"val_dice": 0.2 * (epoch + 1)}

    def score(self, val: dict[str, Any]) -> float:
        return float(val["val_dice"])

    def best_checkpoint(self, state: LoopState, epoch: int, val: dict[str, Any] | None) -> dict[str, Any]:
        return {"epoch": epoch + 1}


def test_no_event_files_by_default(tmp_path: Path) -> None:
    TrainLoop(_Task(), 2, tmp_path, progress=False).run()
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


def test_tensorboard_event_files_hold_the_epoch_figures(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="TensorBoard logging needs the tensorboard package")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tmp_path / "tb"
    TrainLoop(_Task(), 3, tmp_path, progress=False, desc="toy", tensorboard_dir=board).run()
    files = list(board.glob("events.out.tfevents.*"))
    assert files
    acc = EventAccumulator(str(board))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"toy/loss", "toy/lr", "toy/val_dice"}
    assert [(e.step, round(e.value, 4)) for e in acc.Scalars("toy/loss")] == [(1, 1.0), (2, 0.5), (3, 0.3333)]


def test_the_switch_does_not_change_the_resume_fingerprint() -> None:
    from endoked.seg.config import SegConfig
    from endoked.seg.train import _fingerprint

    on = SegConfig.model_validate({"optim": {"tensorboard": True}})
    assert _fingerprint(on, ["a"], 0, 2, None) == _fingerprint(SegConfig(), ["a"], 0, 2, None)
