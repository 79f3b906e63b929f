"""Loss values, attention heads and ranking metrics on hand-made tensors with hand-computed expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from endoked.mil.losses import bag_loss, dsmil_loss, normalised_attention, pseudo_labels, student_loss
from endoked.mil.metrics import instance_metrics
from endoked.mil.model import DSMIL, GatedAttentionMIL, TeacherOutput


def _bce(logit: float, y: float) -> float:
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_bag_loss_is_bce() -> None:
    assert float(bag_loss(torch.tensor(0.0), 1)) == pytest.approx(math.log(2))
    assert float(bag_loss(torch.tensor(2.0), 0)) == pytest.approx(_bce(2.0, 0))
    assert float(bag_loss(torch.tensor(-1.5), 1)) == pytest.approx(_bce(-1.5, 1))


def test_dsmil_loss_averages_bag_and_max_instance() -> None:
    out = TeacherOutput(torch.tensor(0.5), torch.tensor([0.2, 0.8]), torch.tensor([-1.0, 3.0, 0.0]))
    expected = 0.5 * _bce(0.5, 1) + 0.5 * _bce(3.0, 1)
    assert float(dsmil_loss(out, 1)) == pytest.approx(expected)
    expected0 = 0.5 * _bce(0.5, 0) + 0.5 * _bce(3.0, 0)
    assert float(dsmil_loss(out, 0)) == pytest.approx(expected0)
    with pytest.raises(ValueError, match="instance_logits"):
        dsmil_loss(TeacherOutput(torch.tensor(0.0), torch.tensor([1.0])), 1)


def test_normalised_attention_min_max() -> None:
    got = normalised_attention(torch.tensor([0.1, 0.6, 0.3]))
    assert torch.allclose(got, torch.tensor([0.0, 1.0, 0.4]))
    assert torch.equal(normalised_attention(torch.tensor([1.0])), torch.tensor([1.0]))
    assert torch.equal(normalised_attention(torch.tensor([0.25] * 4)), torch.full((4,), 0.5))


def test_pseudo_labels_positive_and_negative_bags() -> None:
    a = torch.tensor([0.1, 0.6, 0.3])  # normalised: 0, 1, 0.4
    b = torch.tensor([0.5, 0.25, 0.25], requires_grad=True)  # normalised: 1, 0, 0
    pos = pseudo_labels(a, b, 1)
    assert torch.allclose(pos, torch.tensor([0.5, 0.5, 0.2]))
    assert not pos.requires_grad
    neg = pseudo_labels(a, b, 0)
    assert torch.equal(neg, torch.zeros(3))


def test_student_loss_weights_positive_bag_instances() -> None:
    logits = torch.tensor([0.0, 2.0, -1.0])
    targets = torch.tensor([1.0, 0.5, 0.0])
    positive = torch.tensor([True, True, False])
    per = [_bce(0.0, 1.0), 0.5 * _bce(2.0, 1) + 0.5 * _bce(2.0, 0), _bce(-1.0, 0.0)]
    # weight 3 for the two positive-bag instances, 1 for the negative-bag one
    expected = (3 * per[0] + 3 * per[1] + 1 * per[2]) / 7
    assert float(student_loss(logits, targets, positive, positive_weight=3.0)) == pytest.approx(expected, rel=1e-6)
    assert float(student_loss(logits, targets, positive, 1.0)) == pytest.approx(sum(per) / 3, rel=1e-6)


def test_student_loss_gradient_reaches_positive_instances() -> None:
    logits = torch.tensor([0.0, 0.0], requires_grad=True)
    student_loss(logits, torch.tensor([1.0, 0.0]), torch.tensor([True, False]), 1.0).backward()
    assert logits.grad is not None
    # d/dz mean BCE = (sigmoid(z) - y) / 2
    assert torch.allclose(logits.grad, torch.tensor([-0.25, 0.25]))


@torch.no_grad()
def test_gated_attention_matches_formula() -> None:
    torch.manual_seed(0)
    head = GatedAttentionMIL(4, 3)
    h = torch.randn(5, 4)
    out = head(h)
    a = torch.tanh(h @ head.V.weight.T + head.V.bias) * torch.sigmoid(h @ head.U.weight.T + head.U.bias)
    scores = (a @ head.w.weight.T + head.w.bias).squeeze(-1)
    att = torch.exp(scores) / torch.exp(scores).sum()
    assert torch.allclose(out.attention, att, atol=1e-6)
    assert float(out.attention.sum()) == pytest.approx(1.0)
    z = (att[:, None] * h).sum(0)
    expected = float(z @ head.classifier.weight[0] + head.classifier.bias[0])
    assert float(out.bag_logit) == pytest.approx(expected, abs=1e-6)


@torch.no_grad()
def test_dsmil_attention_is_a_single_softmax_around_the_critical_instance() -> None:
    torch.manual_seed(1)
    head = DSMIL(4, 3)
    h = torch.randn(6, 4)
    out = head(h)
    inst = h @ head.instance_classifier.weight[0] + head.instance_classifier.bias[0]
    assert torch.allclose(out.instance_logits, inst, atol=1e-6)
    q = head.q(h)
    m = int(inst.argmax())
    u = q @ q[m] / math.sqrt(3)
    expected = torch.exp(u) / torch.exp(u).sum()  # softmax once
    assert torch.allclose(out.attention, expected, atol=1e-6)
    assert not torch.allclose(out.attention, torch.softmax(expected, 0), atol=1e-3)


def test_instance_metrics_drop_unscored_images() -> None:
    m = instance_metrics(np.array([0.9, np.nan, 0.2, 0.1]), np.array([1, 1, 0, 0]))
    assert m == {"auroc": 1.0, "ap": 1.0, "n": 3, "n_positive": 1}
    with pytest.raises(ValueError, match="shape"):
        instance_metrics([0.1, 0.2], [1])


@torch.no_grad()
def test_padded_batch_equals_bags_one_by_one() -> None:
    torch.manual_seed(2)
    ab, ds = GatedAttentionMIL(4, 3), DSMIL(4, 3)
    bags = [torch.randn(3, 4), torch.randn(5, 4), torch.randn(1, 4)]
    padded = torch.nn.utils.rnn.pad_sequence(bags, batch_first=True)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    labels = torch.tensor([1.0, 0.0, 1.0])
    out_ab, out_ds = ab(padded, mask), ds(padded, mask)
    for i, h in enumerate(bags):
        n = len(h)
        one_ab, one_ds = ab(h), ds(h)
        assert torch.allclose(out_ab.attention[i, :n], one_ab.attention, atol=1e-6)
        assert torch.all(out_ab.attention[i, n:] == 0)
        assert torch.allclose(out_ds.attention[i, :n], one_ds.attention, atol=1e-6)
        assert float(out_ds.bag_logit[i]) == pytest.approx(float(one_ds.bag_logit), abs=1e-6)
        pl = pseudo_labels(out_ab.attention, out_ds.attention, labels, mask)[i, :n]
        assert torch.allclose(pl, pseudo_labels(one_ab.attention, one_ds.attention, float(labels[i])), atol=1e-6)
    # mean over bags of the per-bag losses
    per_bag = [float(dsmil_loss(ds(h), float(y))) for h, y in zip(bags, labels, strict=True)]
    assert float(dsmil_loss(out_ds, labels, mask)) == pytest.approx(sum(per_bag) / 3, rel=1e-5)
    # padding does not count in the student loss
    logits = torch.tensor([[0.0, 2.0, 99.0], [1.0, -99.0, -99.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    m2 = torch.tensor([[True, True, False], [True, False, False]])
    pos = torch.tensor([[True, True, True], [False, False, False]])
    flat = student_loss(
        torch.tensor([0.0, 2.0, 1.0]), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([True, True, False]), 2.0
    )
    assert float(student_loss(logits, targets, pos, 2.0, m2)) == pytest.approx(float(flat), rel=1e-6)
