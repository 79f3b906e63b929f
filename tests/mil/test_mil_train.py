"""Training on synthetic feature bags: it learns, it resumes exactly, the split is stratified and seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from endoked.backbones import create_backbone
from endoked.backbones.split import SplitEncoder
from endoked.mil.config import MilConfig
from endoked.mil.data import Bag, split_bags
from endoked.mil.metrics import instance_metrics
from endoked.mil.model import MilHeads
from endoked.mil.train import TrainState, score_rows, train_mil
from endoked.stats import auroc

DIM = 16


def make_bags(n_bags: int = 48, seed: int = 0) -> tuple[torch.Tensor, np.ndarray, list[Bag]]:
    """Instances N(0, 1); polyp instances shifted by +1.5 on 4 of the 16 dimensions."""
    rng = np.random.default_rng(seed)
    feats, flags, bags = [], [], []
    for b in range(n_bags):
        label = b % 2
        n = int(rng.integers(4, 9))
        flag = np.zeros(n, dtype=int)
        if label:
            flag[rng.permutation(n)[: int(rng.integers(1, 4))]] = 1
        x = rng.normal(size=(n, DIM))
        x[flag == 1, :4] += 1.5
        start = sum(len(f) for f in flags)
        feats.append(x)
        flags.append(flag)
        bags.append(Bag(f"E{b:03d}", label, tuple(range(start, start + n))))
    return torch.tensor(np.concatenate(feats), dtype=torch.float32), np.concatenate(flags), bags


def frozen_encoder() -> SplitEncoder:
    return SplitEncoder(create_backbone("test_efficientnet", pretrained=False, num_classes=0), "test_efficientnet", 0)


CFG = MilConfig(
    hidden_dim=32, attention_dim=16, epochs=12, patience=20, bags_per_step=4, lr=3e-3, max_images_per_bag=6, dropout=0.1
)


def test_split_is_stratified_seeded_and_disjoint() -> None:
    bags = [Bag(f"E{i}", int(i < 6), (i,)) for i in range(20)]
    train, val = split_bags(bags, 0.25, seed=1)
    assert {b.exam_id for b in train}.isdisjoint({b.exam_id for b in val})
    assert len(train) + len(val) == 20
    assert sum(b.label for b in val) == 2 and sum(1 - b.label for b in val) == 4  # round(0.25*6), round(0.25*14)
    assert split_bags(bags, 0.25, seed=1) == (train, val)
    assert split_bags(bags, 0.25, seed=2) != (train, val)
    # a class with a single bag keeps it for training
    train1, _ = split_bags([Bag("a", 1, (0,)), *bags[6:]], 0.25, seed=0)
    assert any(b.exam_id == "a" for b in train1)


def test_training_learns_instance_scores_from_bag_labels() -> None:
    torch.manual_seed(0)
    data, flags, bags = make_bags()
    train, val = split_bags(bags, 0.25, seed=0)
    heads = MilHeads(DIM, CFG.hidden_dim, CFG.attention_dim, CFG.dropout)
    state = train_mil(
        heads, frozen_encoder(), data, train, val, CFG, seed=0, device=torch.device("cpu"), progress=False
    )
    assert state.best_epoch >= CFG.student_warmup_epochs
    assert state.best_auroc > 0.8
    scores = score_rows(heads, frozen_encoder(), data, CFG, torch.device("cpu"))
    assert scores.shape == (len(flags),) and np.all((scores >= 0) & (scores <= 1))
    positive_bag_rows = np.concatenate([list(b.items) for b in bags if b.label == 1])
    m = instance_metrics(scores[positive_bag_rows], flags[positive_bag_rows])
    assert m["auroc"] > 0.85, m
    assert auroc(flags, scores) > 0.85


class SimulatedInterruptError(RuntimeError):
    pass


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    ck = torch.load(path, map_location="cpu", weights_only=True)
    return {f"heads.{k}": v for k, v in ck["heads"].items()}


def test_resume_after_interruption_gives_the_same_checkpoint(tmp_path: Path) -> None:
    data, _, bags = make_bags(24, seed=1)
    train, val = split_bags(bags, 0.25, seed=0)
    cfg = CFG.model_copy(update={"epochs": 5})

    def fresh_heads(init_seed: int) -> MilHeads:
        torch.manual_seed(init_seed)
        return MilHeads(DIM, cfg.hidden_dim, cfg.attention_dim, cfg.dropout)

    full = train_mil(
        fresh_heads(0),
        frozen_encoder(),
        data,
        train,
        val,
        cfg,
        seed=3,
        device=torch.device("cpu"),
        checkpoint_dir=tmp_path / "a",
        progress=False,
    )

    def stop_after_epoch_1(state: TrainState) -> None:
        if state.epoch == 1:
            raise SimulatedInterruptError

    with pytest.raises(SimulatedInterruptError):
        train_mil(
            fresh_heads(0),
            frozen_encoder(),
            data,
            train,
            val,
            cfg,
            seed=3,
            device=torch.device("cpu"),
            checkpoint_dir=tmp_path / "b",
            progress=False,
            on_epoch_end=stop_after_epoch_1,
        )
    # The resumed process starts from differently initialised heads: everything must come from last.pt.
    resumed = train_mil(
        fresh_heads(123),
        frozen_encoder(),
        data,
        train,
        val,
        cfg,
        seed=3,
        device=torch.device("cpu"),
        checkpoint_dir=tmp_path / "b",
        progress=False,
    )
    assert resumed.history == full.history
    assert (resumed.best_epoch, resumed.best_auroc) == (full.best_epoch, full.best_auroc)
    for name in ("best.pt", "last.pt"):
        a, b = _tensors(tmp_path / "a" / name), _tensors(tmp_path / "b" / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)


def test_early_stopping_stops_after_patience() -> None:
    data, _, bags = make_bags(16, seed=2)
    train, val = split_bags(bags, 0.25, seed=0)
    cfg = CFG.model_copy(update={"epochs": 30, "patience": 2, "lr": 1e-9})  # nothing improves
    state = train_mil(
        MilHeads(DIM, cfg.hidden_dim, cfg.attention_dim),
        frozen_encoder(),
        data,
        train,
        val,
        cfg,
        seed=0,
        device=torch.device("cpu"),
        progress=False,
    )
    assert state.stopped_early
    assert state.epoch < 29
    assert state.epoch - state.best_epoch == 2


def test_partly_trainable_encoder_trains_only_its_last_stages() -> None:
    model = create_backbone("test_efficientnet", pretrained=False, num_classes=0)
    n_blocks = len(model.blocks)
    enc = SplitEncoder(model, "test_efficientnet", 1)
    trainable = {id(p) for p in enc.trainable_parameters()}
    assert trainable == {id(p) for p in model.parameters() if p.requires_grad}
    assert all(id(p) in trainable for p in model.blocks[n_blocks - 1].parameters())
    assert not any(id(p) in trainable for p in model.conv_stem.parameters())
    images = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)
    enc.eval()
    with torch.no_grad():
        full = model.forward_features(enc.normalise(images)).amax(dim=(2, 3))  # default max pooling
        assert torch.allclose(enc.suffix(enc.prefix(images)), full, atol=1e-5)
        assert torch.allclose(
            SplitEncoder(model, "test_efficientnet", 0, pooling="avg").prefix(images),
            model(enc.normalise(images)),
            atol=1e-5,
        )  # timm's own average pooling
    enc.train()
    assert model.blocks[n_blocks - 1].training and not model.blocks[0].training
    bn = [m for m in model.blocks[n_blocks - 1].modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and not any(m.training for m in bn)  # freeze_bn
    with pytest.raises(Exception, match="block stages"):
        SplitEncoder(create_backbone("test_efficientnet", pretrained=False, num_classes=0), "test_efficientnet", 99)
