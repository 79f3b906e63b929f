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


def _labels(label: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(label, dtype=like.dtype, device=like.device).expand_as(like)


def _valid(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(like, dtype=torch.bool) if mask is None else mask


def bag_loss(bag_logit: torch.Tensor, label: float | torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of bag logits ``()`` or ``(B,)`` against labels (0/1), mean over bags."""
    return F.binary_cross_entropy_with_logits(bag_logit, _labels(label, bag_logit))


def dsmil_loss(out: TeacherOutput, label: float | torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``0.5 * BCE(bag logit) + 0.5 * BCE(max instance logit)``, mean over bags.

    ``out.instance_logits`` is ``(N,)`` for one bag or ``(B, N)`` with ``mask`` ``(B, N)`` True at real instances.
    """
    if out.instance_logits is None:
        raise ValueError("dsmil_loss needs a TeacherOutput with instance_logits")
    inst = out.instance_logits.masked_fill(~_valid(mask, out.instance_logits), float("-inf"))
    return 0.5 * bag_loss(out.bag_logit, label) + 0.5 * bag_loss(inst.max(dim=-1).values, label)


def normalised_attention(attention: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Min-max normalise each bag's attention to [0, 1] (``(N,)``, or ``(B, N)`` with a mask).

    The most attended instance gets 1 and the least 0. A bag with a single instance gets 1; a bag whose
    attention is uniform (max - min < 1e-8) carries no information and gets 0.5 everywhere. Padding gets 0.
    No gradient flows back.
    """
    att = attention.detach()
    valid = _valid(mask, att)
    lo = att.masked_fill(~valid, float("inf")).min(dim=-1, keepdim=True).values
    hi = att.masked_fill(~valid, float("-inf")).max(dim=-1, keepdim=True).values
    span = hi - lo
    out = (att - lo) / span.clamp_min(_EPS)
    out = torch.where(span < _EPS, torch.full_like(att, 0.5), out)
    out = torch.where(valid.sum(dim=-1, keepdim=True) == 1, torch.ones_like(att), out)
    return out.masked_fill(~valid, 0.0)


def pseudo_labels(
    abmil_attention: torch.Tensor,
    dsmil_attention: torch.Tensor,
    label: float | torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Instance pseudo labels in [0, 1] (shape of the attention), without gradient.

    Positive bag: the mean of the two teachers' normalised attention. Negative bag: all 0. ``label`` is a
    number for one bag or ``(B,)`` for padded bags.
    """
    both = 0.5 * (normalised_attention(abmil_attention, mask) + normalised_attention(dsmil_attention, mask))
    positive = torch.as_tensor(label, device=both.device) > 0
    if positive.ndim == 1:
        positive = positive.unsqueeze(-1)
    return torch.where(positive, both, torch.zeros_like(both)).detach()


def student_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    from_positive_bag: torch.Tensor,
    positive_weight: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted soft-target BCE of the student over the instances of several bags.

    Args:
        logits: ``(M,)`` student logits (or ``(B, N)`` padded, with ``mask``).
        targets: pseudo labels in [0, 1], same shape.
        from_positive_bag: bool, same shape: whether each instance belongs to a positive bag.
        positive_weight: weight of instances of positive bags (instances of negative bags weigh 1).
        mask: True at real instances (padding weighs 0).

    Returns:
        ``()`` ``sum_i w_i BCE(logit_i, target_i) / sum_i w_i``.
    """
    weights = torch.where(
        from_positive_bag,
        torch.as_tensor(positive_weight, dtype=logits.dtype, device=logits.device),
        torch.ones_like(logits),
    )
    weights = weights * _valid(mask, logits).to(logits.dtype)
    safe_logits = logits.masked_fill(~_valid(mask, logits), 0.0)
    per = F.binary_cross_entropy_with_logits(safe_logits, targets.to(logits.dtype), reduction="none")
    return (weights * per).sum() / weights.sum().clamp_min(_EPS)
