"""The structure loss of PraNet/Polyp-PVT: boundary-weighted BCE plus weighted IoU, per image.

With ``w = 1 + 5 |avgpool_k(g) - g|`` (``k = 31``, zero padding counted, so pixels near a boundary -- and
foreground near the image border -- weigh up to 6x):

* ``wbce = sum(w * bce(p, g)) / sum(w)`` per image (``bce`` elementwise, from logits);
* ``wiou = 1 - (sum(w * s * g) + 1) / (sum(w * (s + g)) - sum(w * s * g) + 1)`` with ``s = sigmoid(p)``;
* loss = mean over the batch of ``wbce + wiou``.

The official code passes ``reduce='none'`` to ``binary_cross_entropy_with_logits``; that legacy argument is
truthy, so PyTorch *mean*-reduces the BCE to one scalar before the weighting, and the "weighted" BCE is a
plain BCE averaged over the batch. ``legacy=True`` reproduces that for comparisons.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def boundary_weight(mask: torch.Tensor, kernel: int = 31) -> torch.Tensor:
    """``1 + 5 |avgpool(mask) - mask|``: ``(B, 1, H, W)`` float mask in [0, 1] -> same shape."""
    pooled = F.avg_pool2d(mask, kernel_size=kernel, stride=1, padding=kernel // 2, count_include_pad=True)
    return 1.0 + 5.0 * torch.abs(pooled - mask)


def structure_loss(logits: torch.Tensor, mask: torch.Tensor, kernel: int = 31, legacy: bool = False) -> torch.Tensor:
    """Boundary-weighted BCE + weighted IoU.

    Args:
        logits: ``(B, 1, H, W)`` float logits.
        mask: ``(B, 1, H, W)`` float target in [0, 1] (soft targets allowed).
        kernel: odd window of the boundary weight.
        legacy: reproduce the official code's silently mean-reduced BCE.

    Returns:
        Scalar loss (float32, mean over the batch).
    """
    if logits.shape != mask.shape or logits.ndim != 4:
        raise ValueError(
            f"logits and mask must both be (B, 1, H, W); got {tuple(logits.shape)} and {tuple(mask.shape)}"
        )
    logits = logits.float()
    mask = mask.float()
    weit = boundary_weight(mask, kernel)
    if legacy:
        wbce = F.binary_cross_entropy_with_logits(logits, mask).expand(logits.shape[0])
    else:
        bce = F.binary_cross_entropy_with_logits(logits, mask, reduction="none")
        wbce = (weit * bce).sum(dim=(1, 2, 3)) / weit.sum(dim=(1, 2, 3))
    prob = torch.sigmoid(logits)
    inter = (prob * mask * weit).sum(dim=(1, 2, 3))
    union = ((prob + mask) * weit).sum(dim=(1, 2, 3))
    wiou = 1.0 - (inter + 1.0) / (union - inter + 1.0)
    return (wbce + wiou).mean()
