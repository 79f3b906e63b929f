"""The data-efficiency curve on synthetic cached features (no images, no encoder pass)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from endoked.biopsy.config import BiopsyConfig
from endoked.biopsy.curve import data_efficiency
from endoked.biopsy.features import Features
from endoked.biopsy.model import build_model
from endoked.biopsy.train import train_steps


def _feats(n: int, dim: int, seed: int, views: int = 1) -> tuple[Features, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 != 0).astype(np.int64)  # 2/3 neoplastic
    x = rng.normal(0, 1, (n, views, dim)) + 1.5 * (2 * y - 1)[:, None, None] * (np.arange(dim) < 4)
    return Features(torch.tensor(x, dtype=torch.float32), np.ones(n, dtype=bool), {}), y


def test_curve_rows_and_pretraining_effect() -> None:
    cfg = BiopsyConfig(
        backbone="test_efficientnet",
        pretrained=False,
        curve_fractions=[0.1, 1.0],
        curve_repeats=2,
        finetune_steps=5,
        pretrain_steps=60,
        batch_size=16,
        bootstrap=100,
        dropout=0.0,
    )
    torch.manual_seed(0)
    base = build_model(cfg)
    dim = base.head.net[-1].in_features
    pre, y_pre = _feats(200, dim, 1)
    pool, y_pool = _feats(60, dim, 2, views=3)
    test, y_test = _feats(90, dim, 3)
    pretrained = copy.deepcopy(base)
    train_steps(
        pretrained,
        pre,
        y_pre,
        cfg,
        steps=cfg.pretrain_steps,
        lr=1e-2,
        label_smoothing=0.0,
        seed=0,
        device=torch.device("cpu"),
    )
    arms = {"pretrained": (pretrained, True), "scratch": (base, False)}
    groups = [f"g{i}" for i in range(60)]
    rows = data_efficiency(
        arms,
        {"pretrained": pool, "scratch": pool},
        y_pool,
        groups,
        {"pretrained": test, "scratch": test},
        y_test,
        cfg,
        torch.device("cpu"),
    )
    assert [(r["fraction"], r["arm"]) for r in rows] == [
        (0.1, "pretrained"),
        (0.1, "scratch"),
        (1.0, "pretrained"),
        (1.0, "scratch"),
    ]
    # 10 % of 20 non-neoplastic -> 2, of 40 neoplastic -> 4; the validation split takes one image of each class
    assert rows[0]["n_train"] + rows[0]["n_val"] == 6 and rows[0]["n_val"] == 2
    assert rows[2]["n_train"] + rows[2]["n_val"] == 60
    for r in rows:
        assert r["auroc_ci"][0] <= r["auroc"] + 1e-9 and r["auroc"] <= r["auroc_ci"][1] + 1e-9
        assert len(r["test_probs_mean"]) == 90
    # 5 steps are too few for a fresh head; the pre-trained one starts where the classes separate
    assert rows[0]["auroc"] > 0.9 and rows[0]["auroc"] - rows[1]["auroc"] > 0.1
    assert abs(rows[0]["auroc_gain"] - (rows[0]["auroc"] - rows[1]["auroc"])) < 1e-9
    assert rows[0]["auroc_gain_ci"][0] > 0
    again = data_efficiency(
        arms,
        {"pretrained": pool, "scratch": pool},
        y_pool,
        groups,
        {"pretrained": test, "scratch": test},
        y_test,
        cfg,
        torch.device("cpu"),
    )
    assert [r["auroc"] for r in again] == [r["auroc"] for r in rows]
