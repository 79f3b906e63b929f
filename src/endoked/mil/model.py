"""MIL heads on top of per-image features: two bag teachers and an instance student.

- :class:`GatedAttentionMIL` — attention-based deep MIL with gated attention (Ilse, Tomczak & Welling,
  ICML 2018): ``a_i = w^T (tanh(V h_i) * sigmoid(U h_i))``, ``A = softmax(a)``, ``z = sum_i A_i h_i``.
- :class:`DSMIL` — dual-stream MIL (Li, Li & Eliceiri, CVPR 2021): an instance classifier picks the critical
  instance ``m``; attention is ``softmax_i(<q_i, q_m> / sqrt(d))`` (one softmax, unlike the official EndoKED
  code which applies it twice); the bag embedding ``sum_i A_i v_i`` feeds a bag classifier.
- :class:`InstanceStudent` — an MLP giving one logit per image; at inference it scores images on their own.

All take ``h: (N, D)`` float features of one bag's N images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TeacherOutput:
    """One teacher's view of a bag.

    Attributes:
        bag_logit: ``()`` logit of the bag being positive.
        attention: ``(N,)`` attention weights, non-negative, summing to 1.
        instance_logits: ``(N,)`` per-instance logits (DSMIL only, else ``None``).
    """

    bag_logit: torch.Tensor
    attention: torch.Tensor
    instance_logits: torch.Tensor | None = None


class GatedAttentionMIL(nn.Module):
    """Gated attention pooling + linear bag classifier."""

    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.V = nn.Linear(dim, attention_dim)
        self.U = nn.Linear(dim, attention_dim)
        self.w = nn.Linear(attention_dim, 1)
        self.classifier = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor) -> TeacherOutput:
        scores = self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h))).squeeze(-1)  # (N,)
        attention = torch.softmax(scores, dim=0)
        bag = attention @ h  # (D,)
        return TeacherOutput(self.classifier(bag).squeeze(-1), attention)


class DSMIL(nn.Module):
    """Dual-stream MIL: max-instance stream + critical-instance attention stream."""

    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.instance_classifier = nn.Linear(dim, 1)
        self.q = nn.Sequential(nn.Linear(dim, attention_dim), nn.ReLU(), nn.Linear(attention_dim, attention_dim),
                               nn.Tanh())
        self.v = nn.Linear(dim, dim)
        self.bag_classifier = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor) -> TeacherOutput:
        inst = self.instance_classifier(h).squeeze(-1)  # (N,)
        critical = int(torch.argmax(inst.detach()))
        q = self.q(h)  # (N, d)
        scores = q @ q[critical] / math.sqrt(q.shape[-1])  # (N,)
        attention = torch.softmax(scores, dim=0)  # the only softmax
        bag = attention @ self.v(h)  # (D,)
        return TeacherOutput(self.bag_classifier(bag).squeeze(-1), attention, inst)


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

    def forward(self, features: torch.Tensor) -> tuple[TeacherOutput, TeacherOutput, torch.Tensor]:
        """``features: (N, F)`` of one bag -> (ABMIL output, DSMIL output, student logits ``(N,)``)."""
        h = self.project(features)
        return self.abmil(h), self.dsmil(h), self.student(h)

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
