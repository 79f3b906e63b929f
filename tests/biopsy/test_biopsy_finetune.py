"""Fine-tuning a pre-trained head: the L2-SP anchor and the choice of weights on validation, on synthetic
cached features (no images, no encoder pass)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from endoked.biopsy.config import BiopsyConfig
from endoked.biopsy.curve import data_efficiency
from endoked.biopsy.features import Features
from endoked.biopsy.model import BiopsyModel, build_model
from endoked.biopsy.train import (
    INTERPOLATION_GRID,
    StepsTask,
    finetune,
    interpolate_state,
    predict_logits,
    select_weights,
    train_steps,
)
from endoked.stats import auroc

CPU = torch.device("cpu")
BASE = {  # the plain recipe (no anchor, last weights): the mechanisms below are tested one at a time
    "finetune_anchor": 0.0,
    "finetune_select": "last",
    "backbone": "test_efficientnet",
    "pretrained": False,
    "batch_size": 16,
    "dropout": 0.0,
    "pretrain_steps": 60,
    "finetune_steps": 60,
    "lr": 1e-2,
    "finetune_lr": 1e-2,
}


def _feats(n: int, dim: int, seed: int, signal: slice = slice(0, 4), views: int = 1) -> tuple[Features, np.ndarray]:
    """2/3 neoplastic; the class shifts the features in ``signal`` by +-1.5."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 != 0).astype(np.int64)
    x = rng.normal(0, 1, (n, views, dim))
    x[:, :, signal] += 1.5 * (2 * y - 1)[:, None, None]
    return Features(torch.tensor(x, dtype=torch.float32), np.ones(n, dtype=bool), {}), y


def _head(model: BiopsyModel) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.head.parameters()])


@pytest.fixture(scope="module")
def pretrained() -> tuple[BiopsyModel, int]:
    """A head pre-trained on classes that differ in features 0-3."""
    cfg = BiopsyConfig(**BASE)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    dim = model.head.net[-1].in_features
    pre, y_pre = _feats(200, dim, 1)
    train_steps(model, pre, y_pre, cfg, steps=cfg.pretrain_steps, lr=cfg.lr, label_smoothing=0.0, seed=0, device=CPU)
    return model, dim


def test_anchor_zero_is_plain_training_bitwise(pretrained: tuple[BiopsyModel, int]) -> None:
    base, dim = pretrained
    defaults = BiopsyConfig.model_fields
    assert defaults["finetune_anchor"].default == 10.0 and defaults["finetune_select"].default == "interpolate"
    cfg = BiopsyConfig(**BASE)
    ft, y = _feats(40, dim, 2, views=3)
    val, y_val = _feats(12, dim, 4)
    plain = copy.deepcopy(base)
    log_plain = train_steps(
        plain, ft, y, cfg, steps=cfg.finetune_steps, lr=cfg.finetune_lr, label_smoothing=0.0, seed=5, device=CPU
    )
    tuned = copy.deepcopy(base)
    log, [(model, info)] = finetune(tuned, ft, y, val, y_val, cfg, pretrained=True, seed=5, device=CPU)
    assert model is tuned
    for a, b in zip(plain.state_dict().values(), tuned.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert log.losses == log_plain.losses
    assert info["select"] == "last" and info["kept"] == "finetuned" and info["alpha"] == 1.0
    # plain AdamW weight decay without an anchor, none with one
    assert StepsTask(copy.deepcopy(base), ft, y, cfg, 10, 1e-3, 0.0, 0, CPU).opt.param_groups[0]["weight_decay"] == (
        cfg.weight_decay
    )
    anchored = StepsTask(copy.deepcopy(base), ft, y, cfg, 10, 1e-3, 0.0, 0, CPU, anchor=1.0)
    assert all(g["weight_decay"] == 0.0 for g in anchored.opt.param_groups)


def test_huge_anchor_keeps_the_weights_near_the_start(pretrained: tuple[BiopsyModel, int]) -> None:
    base, dim = pretrained
    ft, y = _feats(40, dim, 2)
    val, y_val = _feats(12, dim, 4)
    w0 = _head(base)
    drift = {}
    for anchor in (0.0, 10.0, 1e6):
        model = copy.deepcopy(base)
        cfg = BiopsyConfig(**{**BASE, "finetune_anchor": anchor})
        finetune(model, ft, 1 - y, val, y_val, cfg, pretrained=True, seed=1, device=CPU)  # flipped labels
        drift[anchor] = float((_head(model) - w0).norm())
    assert drift[0.0] > 1.0
    assert drift[1e6] < 0.01 * drift[0.0]
    assert drift[1e6] < drift[10.0] < drift[0.0]
    # a fresh head is never anchored: with a huge anchor it trains as without one
    fresh = {}
    for anchor in (0.0, 1e6):
        torch.manual_seed(3)
        model = build_model(BiopsyConfig(**BASE))
        cfg = BiopsyConfig(**{**BASE, "finetune_anchor": anchor})
        _, [(_, info)] = finetune(model, ft, y, val, y_val, cfg, pretrained=False, seed=1, device=CPU)
        fresh[anchor] = _head(model)
        assert info["anchor"] == 0.0 and info["kept"] == "finetuned"
    assert torch.equal(fresh[0.0], fresh[1e6])


def test_interpolate_state_endpoints_and_midpoint() -> None:
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(1)}
    b = {"w": torch.tensor([1.0, 4.0]), "n": torch.tensor(7)}
    assert torch.equal(interpolate_state(a, b, 0.0)["w"], a["w"]) and interpolate_state(a, b, 0.0)["n"] == 1
    assert torch.equal(interpolate_state(a, b, 1.0)["w"], b["w"])
    mid = interpolate_state(a, b, 0.25)
    assert torch.allclose(mid["w"], torch.tensor([0.25, 2.5])) and mid["n"] == 7
    assert 0.0 in INTERPOLATION_GRID and 1.0 in INTERPOLATION_GRID


@pytest.mark.parametrize("metric", ["auroc", "log_loss"])
def test_flipped_noise_labels_keep_the_pretrained_head(pretrained: tuple[BiopsyModel, int], metric: str) -> None:
    base, dim = pretrained
    ft, y = _feats(40, dim, 2)
    val, y_val = _feats(10, dim, 4)
    test, y_test = _feats(300, dim, 3)
    cfg = BiopsyConfig(**{**BASE, "finetune_select_metric": metric})
    model = copy.deepcopy(base)
    rules = [("last", metric), ("validation", metric), ("interpolate", metric)]
    _, fitted = finetune(model, ft, 1 - y, val, y_val, cfg, pretrained=True, seed=1, device=CPU, rules=rules)
    (last, i_last), (chosen, i_val), (mixed, i_mix) = fitted
    assert last is model and i_last["kept"] == "finetuned"
    start_auc = auroc(y_test, predict_logits(base, test, CPU))
    assert auroc(y_test, predict_logits(last, test, CPU)) < start_auc - 0.2  # fine-tuning on noise hurt
    assert i_val["kept"] == "pretrained" and i_val["alpha"] == 0.0
    for a, b in zip(chosen.state_dict().values(), base.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert set(i_val["scores"]) == {"0", "1"} and set(i_mix["scores"]) == {f"{a:g}" for a in INTERPOLATION_GRID}
    if metric == "auroc":
        assert i_mix["alpha"] == 0.0
    # never worse than the pre-trained head on the validation criterion, by construction
    sign = 1 if metric == "auroc" else -1
    assert sign * i_mix["scores"][f"{i_mix['alpha']:g}"] >= sign * i_mix["scores"]["0"]
    assert auroc(y_test, predict_logits(mixed, test, CPU)) > start_auc - 0.05


@pytest.mark.parametrize("metric", ["auroc", "log_loss"])
def test_clean_labels_on_shifted_data_keep_the_finetuned_weights(
    pretrained: tuple[BiopsyModel, int], metric: str
) -> None:
    base, dim = pretrained
    shifted = slice(8, 12)  # the classes now differ in other features: the pre-trained head is near chance
    ft, y = _feats(40, dim, 2, shifted)
    val, y_val = _feats(10, dim, 4, shifted)
    test, y_test = _feats(300, dim, 3, shifted)
    cfg = BiopsyConfig(**BASE)
    rules = [("validation", metric), ("interpolate", metric)]
    _, fitted = finetune(copy.deepcopy(base), ft, y, val, y_val, cfg, pretrained=True, seed=1, device=CPU, rules=rules)
    (chosen, i_val), (mixed, i_mix) = fitted
    start_auc = auroc(y_test, predict_logits(base, test, CPU))
    assert start_auc < 0.7
    assert i_val["kept"] == "finetuned" and i_val["alpha"] == 1.0
    assert i_mix["kept"] in ("finetuned", "interpolated") and i_mix["alpha"] > 0.0
    for model in (chosen, mixed):
        assert auroc(y_test, predict_logits(model, test, CPU)) > start_auc + 0.2


def test_validation_without_both_classes_keeps_the_pretrained_head(pretrained: tuple[BiopsyModel, int]) -> None:
    base, dim = pretrained
    shifted = slice(8, 12)
    ft, y = _feats(40, dim, 2, shifted)
    val, y_val = _feats(6, dim, 4, shifted)
    one_class = val.select(np.flatnonzero(y_val == 1))
    model = copy.deepcopy(base)
    train_steps(model, ft, y, BiopsyConfig(**BASE), steps=30, lr=1e-2, label_smoothing=0.0, seed=0, device=CPU)
    start = {k: v.clone() for k, v in base.state_dict().items()}
    info = select_weights(model, start, one_class, np.ones(len(one_class.ok)), "validation", "auroc", CPU)
    assert info["kept"] == "pretrained" and "note" in info
    assert torch.equal(_head(model), _head(base))


def test_curve_reads_several_rules_from_one_training(pretrained: tuple[BiopsyModel, int]) -> None:
    base, dim = pretrained
    cfg = BiopsyConfig(
        **{**BASE, "curve_fractions": [0.25, 1.0], "curve_repeats": 2, "finetune_steps": 20, "bootstrap": 50}
    )
    shifted = slice(2, 6)  # half the pre-trained signal remains
    pool, y_pool = _feats(48, dim, 2, shifted, views=3)
    test, y_test = _feats(90, dim, 3, shifted)
    torch.manual_seed(1)
    fresh = build_model(cfg).eval()
    arms = {"pretrained": (base, True), "fresh": (fresh, False)}
    args = (
        {"pretrained": pool, "fresh": pool},
        y_pool,
        [f"g{i}" for i in range(48)],
        {"pretrained": test, "fresh": test},
        y_test,
    )
    plain = data_efficiency(arms, *args, cfg, CPU)
    rules = [("last", "auroc"), ("validation", "auroc"), ("interpolate", "log_loss")]
    anchored = BiopsyConfig(**{**cfg.model_dump(), "finetune_anchor": 1.0})
    arms3 = {"pretrained": (base, True), "anchored": (base, True), "fresh": (fresh, False)}
    rows = data_efficiency(
        arms3,
        {"pretrained": pool, "anchored": pool, "fresh": pool},
        *args[1:3],
        {"pretrained": test, "anchored": test, "fresh": test},
        y_test,
        cfg,
        CPU,
        configs={"anchored": anchored},
        rules=rules,
        baseline="fresh",
    )
    labels = ["last", "validation (auroc)", "interpolate (log_loss)"]
    expected = [(arm, sel) for arm in ("pretrained", "anchored") for sel in labels] + [("fresh", "last")]
    assert [(r["fraction"], r["arm"], r["select"]) for r in rows] == [
        (f, a, s) for f in (0.25, 1.0) for a, s in expected
    ]
    # the 'last' rule reads the same training run as the default curve: identical figures
    for old, new in zip(
        [r for r in plain if r["arm"] == "pretrained"],
        [r for r in rows if r["arm"] == "pretrained" and r["select"] == "last"],
        strict=True,
    ):
        assert new["auroc"] == old["auroc"] and new["test_probs_mean"] == old["test_probs_mean"]
        assert new["auroc_gain"] == old["auroc_gain"]
    for r in rows:
        assert sum(r["kept"].values()) == cfg.curve_repeats
        if r["arm"] == "fresh":
            assert "auroc_gain" not in r and "start_auroc" not in r and r["kept"]["finetuned"] == 2
            continue
        assert r["anchor"] == (1.0 if r["arm"] == "anchored" else 0.0)
        lo, hi = r["auroc_gain_vs_start_ci"]
        assert lo <= r["auroc_gain_vs_start"] + 1e-9 and r["auroc_gain_vs_start"] <= hi + 1e-9
        assert abs(r["auroc"] - r["start_auroc"] - r["auroc_gain_vs_start"]) < 1e-12
        assert "auroc_gain_ci" in r
        if r["select"] == "last":
            assert r["kept"]["finetuned"] == 2 and r["alpha_mean"] == 1.0
