"""The losses of bag distillation, written once.

Per optimiser step over a set of bags ``b`` with labels ``y_b`` in {0, 1}:

``L = mean_b [ L_abmil(b) + L_dsmil(b) ] + student_weight * L_student``

- ``L_abmil(b) = BCE(abmil_logit_b, y_b)``.
- ``L_dsmil(b) = 0.5 * BCE(dsmil_bag_logit_b, y_b) + 0.5 * BCE(max_i instance_logit_bi, y_b)`` (DSMIL, Li et al.
  2021: the max-instance stream and the attention stream are trained together).
- ``L_student``: soft-target BCE of the student's instance logits against pseudo labels (see
  :func:`pseudo_labels`: the teachers' normalised attention inside positive bags, 0 in negative bags),
  weighted ``positive_weight`` for instances of positive bags and 1 for instances of negative bags,
  normalised by the sum of weights over all instances of the step. Pseudo labels carry no gradient.

Teachers are trained on every bag, positive and negative, in every epoch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from endoked.mil.model import TeacherOutput

_EPS = 1e-8


def bag_loss(bag_logit: torch.Tensor, label: float) -> torch.Tensor:
    """Binary cross-entropy of one bag logit ``()`` against its label (0 or 1)."""
    return F.binary_cross_entropy_with_logits(bag_logit, torch.as_tensor(float(label), dtype=bag_logit.dtype,
                                                                          device=bag_logit.device))


def dsmil_loss(out: TeacherOutput, label: float) -> torch.Tensor:
    """``0.5 * BCE(bag logit) + 0.5 * BCE(max instance logit)`` for one bag."""
    if out.instance_logits is None:
        raise ValueError("dsmil_loss needs a TeacherOutput with instance_logits")
    return 0.5 * bag_loss(out.bag_logit, label) + 0.5 * bag_loss(out.instance_logits.max(), label)


def normalised_attention(attention: torch.Tensor) -> torch.Tensor:
    """Min-max normalise one bag's attention ``(N,)`` to [0, 1].

    The most attended instance gets 1 and the least 0. A single instance gets 1; a bag whose attention is
    uniform (max - min < 1e-8) carries no information and gets 0.5 everywhere. No gradient flows back.
    """
    attention = attention.detach()
    if attention.numel() == 1:
        return torch.ones_like(attention)
    lo, hi = attention.min(), attention.max()
    if float(hi - lo) < _EPS:
        return torch.full_like(attention, 0.5)
    return (attention - lo) / (hi - lo)


def pseudo_labels(abmil_attention: torch.Tensor, dsmil_attention: torch.Tensor, label: float) -> torch.Tensor:
    """Instance pseudo labels ``(N,)`` in [0, 1] for one bag, without gradient.

    Positive bag: the mean of the two teachers' normalised attention. Negative bag: all 0.
    """
    if label <= 0:
        return torch.zeros_like(abmil_attention).detach()
    both = 0.5 * (normalised_attention(abmil_attention) + normalised_attention(dsmil_attention))
    return both.detach()


def student_loss(logits: torch.Tensor, targets: torch.Tensor, from_positive_bag: torch.Tensor,
                 positive_weight: float = 1.0) -> torch.Tensor:
    """Weighted soft-target BCE of the student over the instances of several bags.

    Args:
        logits: ``(M,)`` student logits.
        targets: ``(M,)`` pseudo labels in [0, 1].
        from_positive_bag: ``(M,)`` bool, whether each instance belongs to a positive bag.
        positive_weight: weight of instances of positive bags (instances of negative bags weigh 1).

    Returns:
        ``()`` ``sum_i w_i BCE(logit_i, target_i) / sum_i w_i``.
    """
    weights = torch.where(from_positive_bag, torch.as_tensor(positive_weight, dtype=logits.dtype,
                                                             device=logits.device), torch.ones_like(logits))
    per = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return (weights * per).sum() / weights.sum().clamp_min(_EPS)
