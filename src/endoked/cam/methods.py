"""Class activation maps of a :class:`~endoked.cam.model.CamNet`, with multi-scale + flip aggregation.

Methods (all return non-negative maps; larger = more polyp):

- ``cam``: the head's own location logits (for a GAP + linear head this is the classic CAM of Zhou et al.
  2016, bias included), clipped at 0.
- ``gradcam``: Grad-CAM (Selvaraju et al. 2017) on chosen encoder levels: channels weighted by the
  spatial mean of the image logit's gradient.
- ``gradcampp``: Grad-CAM++ (Chattopadhay et al. 2018), the closed-form second-order weights.
- ``layercam``: LayerCAM (Jiang et al. 2021): element-wise positive gradients times activations, which
  stays sharp on early, high-resolution levels.

The gradient methods are implemented here (a few lines each on the encoder's own feature levels) rather
than through the ``grad-cam`` package, which pins the non-headless ``opencv-python`` and hooks modules by
name, while here the levels are already the model's outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from endoked.cam.model import CamNet
from endoked.errors import ConfigError

METHODS = ("cam", "gradcam", "gradcampp", "layercam")


def level_modules(encoder: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are the encoder's feature levels (timm ``feature_info`` names)."""
    info = getattr(encoder, "feature_info", None)
    if info is None or not hasattr(info, "module_name"):
        raise ConfigError("gradient CAM methods need an encoder with timm-style feature_info; use method 'cam'")
    return [encoder.get_submodule(name) for name in info.module_name()]


def _grad_weights(method: str, act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    if method == "gradcam":
        return grad.mean(dim=(2, 3), keepdim=True) * act
    if method == "layercam":
        return grad.clamp_min(0) * act
    # Grad-CAM++ with the exponential-score closed form.
    g2 = grad.pow(2)
    g3 = g2 * grad
    denom = 2 * g2 + act.sum(dim=(2, 3), keepdim=True) * g3
    alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
    alpha = torch.where(grad != 0, alpha, torch.zeros_like(alpha))
    weights = (alpha * grad.clamp_min(0)).sum(dim=(2, 3), keepdim=True)
    return weights * act


def activation_maps(
    net: CamNet, x: torch.Tensor, method: str = "cam", layers: Sequence[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Activation maps for a batch.

    Args:
        net: the classifier.
        x: ``(B, 3, H, W)`` normalised images.
        method: one of :data:`METHODS`.
        layers: encoder levels for the gradient methods (default: the head's levels); maps of several
            levels are upsampled to the finest one and averaged after each is max-normalised.

    Returns:
        ``maps``: ``(B, h, w) float32 >= 0`` at the finest level's resolution; ``logits``: ``(B,)``.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown CAM method {method!r}; valid: {', '.join(METHODS)}")
    if method == "cam":
        with torch.no_grad():
            logits, logit_map = net(x)
        return logit_map[:, 0].clamp_min(0).float(), logits.float()
    n_levels = len(net.channels)
    chosen = sorted({lv % n_levels for lv in (layers if layers is not None else net.levels)})
    modules = level_modules(net.encoder)
    leaves: dict[int, torch.Tensor] = {}

    def make_hook(level: int) -> Callable[[nn.Module, object, torch.Tensor], torch.Tensor]:
        def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> torch.Tensor:
            leaf = out.detach().requires_grad_(True)
            leaves[level] = leaf
            return leaf

        return hook

    handles = [modules[lv].register_forward_hook(make_hook(lv)) for lv in chosen]
    try:
        with torch.enable_grad():
            logits, _ = net(x)
            grads = torch.autograd.grad(logits.sum(), [leaves[lv] for lv in chosen], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    size = max((leaves[lv].shape[-2:] for lv in chosen), key=lambda s: s[0] * s[1])
    out = torch.zeros((x.shape[0], *size), dtype=torch.float32, device=x.device)
    for lv, g in zip(chosen, grads, strict=True):
        act = leaves[lv].detach()
        if g is None:
            continue
        cam = _grad_weights(method, act, g.detach()).sum(1, keepdim=True).clamp_min(0)
        if cam.shape[-2:] != size:
            cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)
        peak = cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
        out += (cam / peak)[:, 0].float()
    return out / len(chosen), logits.detach().float()


def tta_maps(
    net: CamNet,
    x: torch.Tensor,
    method: str = "cam",
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    out_size: tuple[int, int] | None = None,
    layers: Sequence[int] | None = None,
    batch_flips: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps aggregated over scales and horizontal flips (mean of the per-view maps).

    Args:
        net: the classifier.
        x: ``(B, 3, H, W)`` normalised images at the base size.
        method: CAM method.
        scales: resize factors of the base size (EndoKED: 0.5 … 1.75).
        flip: add the horizontally flipped view of every scale.
        out_size: ``(h, w)`` of the aggregated map; default: the map size of the largest scale (views at
            larger scales see finer detail; aggregating at the base size would throw that away).
        layers: encoder levels for gradient methods.
        batch_flips: run each scale's flipped views in the same forward pass as the originals (one batch of
            ``2B``; the classifier is in eval mode, so every image's result is that of its own pass).

    Returns:
        ``maps``: ``(B, h, w) float32 >= 0``; ``probs``: ``(B,)`` mean sigmoid of the views' image logits.
    """
    if not scales:
        raise ConfigError("cam.scales must hold at least one scale")
    h, w = x.shape[-2:]
    if out_size is None:
        top = max(scales)
        out_size = (max(32, round(h * top)) // net.stride, max(32, round(w * top)) // net.stride)
    acc: torch.Tensor | None = None
    prob = torch.zeros(x.shape[0], device=x.device)
    n = 0
    for s in scales:
        size = (max(32, round(h * s)), max(32, round(w * s)))
        xs = x if size == (h, w) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        views: list[tuple[torch.Tensor, torch.Tensor]]
        if flip and batch_flips:
            b = xs.shape[0]
            maps2, logits2 = activation_maps(net, torch.cat([xs, torch.flip(xs, dims=[3])]), method, layers)
            views = [(maps2[:b], logits2[:b]), (torch.flip(maps2[b:], dims=[2]), logits2[b:])]
        else:
            views = []
            for flipped in (False, True) if flip else (False,):
                maps, logits = activation_maps(net, torch.flip(xs, dims=[3]) if flipped else xs, method, layers)
                views.append((torch.flip(maps, dims=[2]) if flipped else maps, logits))
        for maps, logits in views:
            maps = F.interpolate(maps[:, None], size=out_size, mode="bilinear", align_corners=False)[:, 0]
            acc = maps if acc is None else acc + maps
            prob += torch.sigmoid(logits)
            n += 1
    if acc is None:
        raise ConfigError("cam.scales must hold at least one scale")
    return acc / n, prob / n
