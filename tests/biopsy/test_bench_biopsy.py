"""The biopsy benchmark's side-by-side fine-tuning variants, on synthetic cached features (no data set)."""

from __future__ import annotations

import copy
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from endoked.biopsy.config import BiopsyConfig
from endoked.biopsy.features import Features
from endoked.biopsy.metrics import evaluate
from endoked.biopsy.model import build_model
from endoked.biopsy.train import probabilities, train_steps
from tests.scripts import load_script

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def bb() -> ModuleType:
    return load_script(Path("benchmarks/bench_biopsy.py"))


def _feats(n: int, dim: int, seed: int, views: int = 1) -> tuple[Features, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 != 0).astype(np.int64)
    x = rng.normal(0, 1, (n, views, dim))
    x[:, :, 2:6] += 1.5 * (2 * y - 1)[:, None, None]
    return Features(torch.tensor(x, dtype=torch.float32), np.ones(n, dtype=bool), {}), y


def test_variant_rules(bb: ModuleType) -> None:
    rules = bb.variant_rules(["last", "validation", "interpolate", "last"], ["auroc", "log_loss"])
    assert rules == [
        ("last", "auroc"),
        ("validation", "auroc"),
        ("validation", "log_loss"),
        ("interpolate", "auroc"),
        ("interpolate", "log_loss"),
    ]


def test_variants_side_by_side_in_one_table(bb: ModuleType, tmp_path: Path) -> None:
    cfg = BiopsyConfig(
        backbone="test_efficientnet",
        pretrained=False,
        batch_size=16,
        dropout=0.0,
        curve_fractions=[0.25, 1.0],
        curve_repeats=2,
        finetune_steps=10,
        bootstrap=30,
    )
    torch.manual_seed(0)
    base = build_model(cfg).eval()
    dim = base.head.net[-1].in_features
    pre, y_pre = _feats(120, dim, 1)
    pool, y_pool = _feats(48, dim, 2, views=3)
    test, y_test = _feats(60, dim, 3)
    pretrained = copy.deepcopy(base)
    train_steps(pretrained, pre, y_pre, cfg, steps=40, lr=1e-2, label_smoothing=0.0, seed=0, device=CPU)
    rules = bb.variant_rules(["last", "validation", "interpolate"], ["auroc"])
    rows = bb.curve_variants(
        pretrained, base, pool, y_pool, [f"g{i}" for i in range(48)], test, y_test, cfg, CPU, rules, [0.0, 1.0]
    )
    models = [bb._model(r) for r in rows if r["fraction"] == 1.0]
    assert models == [
        "report-pretrained, anchor 0, last",
        "report-pretrained, anchor 0, validation (auroc)",
        "report-pretrained, anchor 0, interpolate (auroc)",
        "report-pretrained, anchor 1, last",
        "report-pretrained, anchor 1, validation (auroc)",
        "report-pretrained, anchor 1, interpolate (auroc)",
        "imagenet",
    ]
    zero = evaluate(y_test, probabilities(pretrained, test, CPU), 0.5, 30)
    md = bb.markdown({"zero_label": zero, "curve": rows})
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + 2 * 7  # header, 0 % row, 7 rows per share
    assert all(line.count("|") == table[0].count("|") for line in table)
    assert sum(line.startswith("- report-pretrained") for line in md.splitlines()) == 6
    bb.plot_curve(tmp_path / "curve.png", rows, zero["auroc"])
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
