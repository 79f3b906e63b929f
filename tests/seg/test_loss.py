from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from endoked.seg.loss import boundary_weight, structure_loss


def _weights_numpy(mask: np.ndarray, k: int) -> np.ndarray:
    """1 + 5 |mean over the k x k window (zero padding counted) - mask|, by explicit loops."""
    h, w = mask.shape
    pad = k // 2
    padded = np.zeros((h + 2 * pad, w + 2 * pad))
    padded[pad : pad + h, pad : pad + w] = mask
    out = np.empty((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = 1 + 5 * abs(padded[y : y + k, x : x + k].sum() / (k * k) - mask[y, x])
    return out


def _loss_numpy(logit: np.ndarray, mask: np.ndarray, k: int) -> float:
    w = _weights_numpy(mask, k)
    p = 1 / (1 + np.exp(-logit))
    bce = -(mask * np.log(p) + (1 - mask) * np.log(1 - p))
    wbce = (w * bce).sum() / w.sum()
    inter = (p * mask * w).sum()
    union = ((p + mask) * w).sum()
    return float(wbce + 1 - (inter + 1) / (union - inter + 1))


def test_closed_form_all_background_zero_logits() -> None:
    # weights are 1 everywhere, BCE = ln 2 per pixel, inter = 0, union = 16 * 0.5 = 8
    logits = torch.zeros(1, 1, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    want = math.log(2) + 1 - 1 / 9
    assert structure_loss(logits, mask, kernel=3).item() == pytest.approx(want, abs=1e-6)
    assert want == pytest.approx(1.582036, abs=1e-6)


def test_weights_match_hand_computed_values() -> None:
    mask = torch.zeros(1, 1, 3, 3)
    mask[0, 0, 1, 1] = 1.0
    w = boundary_weight(mask, kernel=3)[0, 0]
    # every 3x3 window containing the centre sums to 1 -> mean 1/9
    assert w[1, 1].item() == pytest.approx(1 + 5 * (1 - 1 / 9))
    assert w[0, 0].item() == pytest.approx(1 + 5 / 9)
    assert w[0, 1].item() == pytest.approx(1 + 5 / 9)


def test_golden_values_against_independent_numpy() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (2, 6, 7))
    masks = np.zeros((2, 6, 7))
    masks[0, 1:4, 2:6] = 1
    masks[1, 3:6, 0:3] = 1
    want = np.mean([_loss_numpy(logits[i], masks[i], 5) for i in range(2)])
    got = structure_loss(
        torch.tensor(logits[:, None], dtype=torch.float32), torch.tensor(masks[:, None], dtype=torch.float32), kernel=5
    ).item()
    assert got == pytest.approx(want, rel=1e-5)


def test_legacy_flag_reproduces_mean_reduced_bce() -> None:
    rng = np.random.default_rng(4)
    logits = torch.tensor(rng.normal(0, 2, (2, 1, 8, 8)), dtype=torch.float32)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 3:7] = 1
    legacy = structure_loss(logits, mask, kernel=3, legacy=True)
    plain_bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, mask)
    weighted = structure_loss(logits, mask, kernel=3)
    # the two differ only in the BCE term: legacy = plain BCE (batch mean), fixed = boundary-weighted BCE
    w = boundary_weight(mask, 3)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, mask, reduction="none")
    wbce = ((w * bce).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3))).mean()
    assert (legacy - plain_bce).item() == pytest.approx((weighted - wbce).item(), abs=1e-6)
    assert abs(wbce.item() - plain_bce.item()) > 1e-3


def test_perfect_prediction_has_small_loss_and_shapes_are_checked() -> None:
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    good = structure_loss((mask * 2 - 1) * 20, mask)
    bad = structure_loss((1 - mask * 2) * 20, mask)
    assert good.item() < 0.01 < bad.item()
    with pytest.raises(ValueError):
        structure_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
