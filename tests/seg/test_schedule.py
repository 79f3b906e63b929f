from __future__ import annotations

import itertools
import math

import pytest

from endoked.seg.data import scaled_size, split_indices
from endoked.seg.train import lr_factor
from tests.seg.conftest import tiny_config


def test_warmup_is_linear_then_cosine_reaches_floor() -> None:
    cfg = tiny_config(optim__schedule="cosine", optim__min_lr_ratio=0.1)
    total, warm, spe = 100, 10, 10
    assert [round(lr_factor(s, total, warm, spe, cfg), 6) for s in range(3)] == [
        round(1 / 11, 6),
        round(2 / 11, 6),
        round(3 / 11, 6),
    ]
    assert lr_factor(10, total, warm, spe, cfg) == pytest.approx(1.0)
    mid = 10 + 45
    assert lr_factor(mid, total, warm, spe, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_factor(100, total, warm, spe, cfg) == pytest.approx(0.1)


def test_poly_is_monotone_to_floor() -> None:
    cfg = tiny_config(optim__schedule="poly", optim__min_lr_ratio=0.0, optim__poly_power=0.9)
    vals = [lr_factor(s, 50, 0, 5, cfg) for s in range(51)]
    assert vals[0] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(vals))
    assert vals[25] == pytest.approx(0.5**0.9)
    assert vals[50] == pytest.approx(0.0)


def test_step_schedule_does_not_compound() -> None:
    # Polyp-PVT intends lr * 0.1 ** (epoch // 50); its code multiplies the current lr every epoch instead
    cfg = tiny_config(optim__schedule="step", optim__step_epochs=50, optim__step_rate=0.1)
    spe = 4
    assert lr_factor(49 * spe, 400, 0, spe, cfg) == pytest.approx(1.0)
    for epoch in (50, 51, 75, 99):
        assert lr_factor(epoch * spe, 400, 0, spe, cfg) == pytest.approx(0.1)
    assert lr_factor(100 * spe, 400, 0, spe, cfg) == pytest.approx(0.01)


def test_scaled_size_and_split() -> None:
    assert [scaled_size(352, s) for s in (0.75, 1.0, 1.25)] == [256, 352, 448]
    assert scaled_size(64, 0.1) == 32
    tr, va = split_indices(20, 0.2, 100, seed=5)
    assert len(va) == 4 and len(tr) == 16 and not set(tr) & set(va)
    assert (tr, va) == split_indices(20, 0.2, 100, seed=5)
    assert split_indices(20, 0.2, 2, seed=5)[1].__len__() == 2
    assert split_indices(1, 0.5, 10, seed=0) == ([0], [])
