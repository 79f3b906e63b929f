"""MIL heads on top of per-image features: two bag teachers and an instance student.

- :class:`GatedAttentionMIL` — attention-based deep MIL with gated attention (Ilse, Tomczak & Welling,
  ICML 2018): ``a_i = w^T (tanh(V h_i) * sigmoid(U h_i))``, ``A = softmax(a)``, ``z = sum_i A_i h_i``.
- :class:`DSMIL` — dual-stream MIL (Li, Li & Eliceiri, CVPR 2021): an instance classifier picks the critical
  instance ``m``; attention is ``softmax_i(<q_i, q_m> / sqrt(d))`` (one softmax, unlike the official EndoKED
  code which applies it twice); the bag embedding ``sum_i A_i v_i`` feeds a bag classifier.
- :class:`InstanceStudent` — an MLP giving one logit per image; at inference it scores images on their own.

All take ``h: (B, N, D)`` float features of B bags padded to N images (with a ``(B, N)`` mask), or
``(N, D)`` for a single bag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TeacherOutput:
    """One teacher's view of B bags (or of one bag, without the leading B dimension).

    Attributes:
        bag_logit: ``(B,)`` logits of the bags being positive.
        attention: ``(B, N)`` attention weights: non-negative, summing to 1 over each bag's real instances,
            0 at padding.
        instance_logits: ``(B, N)`` per-instance logits (DSMIL only, else ``None``); padding holds -inf.
    """

    bag_logit: torch.Tensor
    attention: torch.Tensor
    instance_logits: torch.Tensor | None = None


def _batched(h: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``h: (N, D)`` or ``(B, N, D)`` -> ``(B, N, D)``, mask ``(B, N)`` bool, and whether input was one bag."""
    single = h.ndim == 2
    if single:
        h = h.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    if mask is None:
        mask = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
    return h, mask, single


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def _unbatch(out: TeacherOutput, single: bool) -> TeacherOutput:
    if not single:
        return out
    inst = None if out.instance_logits is None else out.instance_logits[0]
    return TeacherOutput(out.bag_logit[0], out.attention[0], inst)


class GatedAttentionMIL(nn.Module):
    """Gated attention pooling + linear bag classifier."""

    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.V = nn.Linear(dim, attention_dim)
        self.U = nn.Linear(dim, attention_dim)
        self.w = nn.Linear(attention_dim, 1)
        self.classifier = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> TeacherOutput:
        """``h: (B, N, D)`` (or ``(N, D)``), ``mask: (B, N)`` bool, True at real instances."""
        h, mask, single = _batched(h, mask)
        scores = self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h))).squeeze(-1)  # (B, N)
        attention = _masked_softmax(scores, mask)
        bag = torch.einsum("bn,bnd->bd", attention, h)
        return _unbatch(TeacherOutput(self.classifier(bag).squeeze(-1), attention), single)


class DSMIL(nn.Module):
    """Dual-stream MIL: max-instance stream + critical-instance attention stream."""

    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.instance_classifier = nn.Linear(dim, 1)
        self.q = nn.Sequential(
            nn.Linear(dim, attention_dim), nn.ReLU(), nn.Linear(attention_dim, attention_dim), nn.Tanh()
        )
        self.v = nn.Linear(dim, dim)
        self.bag_classifier = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> TeacherOutput:
        """``h: (B, N, D)`` (or ``(N, D)``), ``mask: (B, N)`` bool, True at real instances."""
        h, mask, single = _batched(h, mask)
        inst = self.instance_classifier(h).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, N)
        critical = torch.argmax(inst.detach(), dim=1)  # (B,)
        q = self.q(h)  # (B, N, d)
        q_crit = q[torch.arange(q.shape[0], device=q.device), critical]  # (B, d)
        scores = torch.einsum("bnd,bd->bn", q, q_crit) / math.sqrt(q.shape[-1])
        attention = _masked_softmax(scores, mask)  # the only softmax
        bag = torch.einsum("bn,bnd->bd", attention, self.v(h))
        return _unbatch(TeacherOutput(self.bag_classifier(bag).squeeze(-1), attention, inst), single)


class InstanceStudent(nn.Module):
    """Two-layer MLP: one logit per image."""

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h).squeeze(-1)


class MilHeads(nn.Module):
    """Shared projection of encoder features + the two teachers + the student.

    Args:
        in_dim: encoder feature width F.
        hidden_dim: projection width D.
        attention_dim: teachers' attention width.
        dropout: dropout after the projection (training only).
    """

    def __init__(self, in_dim: int, hidden_dim: int = 256, attention_dim: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout))
        self.abmil = GatedAttentionMIL(hidden_dim, attention_dim)
        self.dsmil = DSMIL(hidden_dim, attention_dim)
        self.student = InstanceStudent(hidden_dim, attention_dim)

    def forward(
        self, features: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[TeacherOutput, TeacherOutput, torch.Tensor]:
        """``features: (B, N, F)`` padded bags (or ``(N, F)`` one bag), ``mask: (B, N)`` True at real images.

        Returns:
            ABMIL output, DSMIL output, student logits ``(B, N)`` (``(N,)`` for one bag).
        """
        h = self.project(features)
        return self.abmil(h, mask), self.dsmil(h, mask), self.student(h)

    def score_instances(self, features: torch.Tensor, source: str = "student") -> torch.Tensor:
        """Per-image probabilities ``(N,)`` in [0, 1] from ``features: (N, F)`` (no bag context needed)."""
        h = self.project(features)
        student = torch.sigmoid(self.student(h))
        if source == "student":
            return student
        inst = torch.sigmoid(self.dsmil.instance_classifier(h).squeeze(-1))
        if source == "dsmil_instance":
            return inst
        return 0.5 * (student + inst)
