"""Published segmentation weights read as they were released: the official Polyp-PVT and PraNet layouts.

**Polyp-PVT** (also EndoKED-SEG). The Polyp-PVT code (DengPingFan/Polyp-PVT, ``lib/pvt.py`` class ``PolypPVT``
on the ``pvt_v2_b2`` of its ``lib/pvtv2.py``) saves ``model.state_dict()`` as a ``.pth`` file; EndoKED-SEG
(shuowang26/EndoKED, ``EndoKD_SEG/lib/pvt.py``) trains and releases the same network. Its 419 tensors map one
to one onto :class:`endoked.seg.model.PolypPVT` with a ``pvt_v2_b2`` encoder and the ``"official"`` decoder
arithmetic:

=====================================  =====================================================
official name                          name here
=====================================  =====================================================
``backbone.patch_embed1.*``            ``encoder.stages.0.0.*``
``backbone.block1.<i>.*``              ``encoder.stages.0.1.blocks.<i>.*``
``backbone.norm1.*``                   ``encoder.stages.0.1.norm.*``
``backbone.patch_embed<k>.*`` (k>1)    ``encoder.stages.<k-1>.0.downsample.*``
``backbone.block<k>.<i>.*`` (k>1)      ``encoder.stages.<k-1>.0.blocks.<i>.*``
``backbone.norm<k>.*`` (k>1)           ``encoder.stages.<k-1>.0.norm.*``
``...mlp.dwconv.dwconv.*``             ``...mlp.dwconv.*``
``Translayer2_0`` / ``2_1`` / ``3_1``  ``reduce1`` / ``reduce2`` / ``reduce3`` / ``reduce4``
/ ``4_1`` (``.conv``, ``.bn``)         (``.0``, ``.1``)
``CFM.conv_upsample<n>`` (n = 1..5)    ``cfm.up<n>``
``CFM.conv_concat2`` / ``3``, ``conv4``  ``cfm.cat2`` / ``cat3``, ``cfm.out``
``ca.*``, ``sa.conv1.*``               ``cim.ca.*``, ``cim.sa.conv.*``
``SAM.gcn.conv1`` / ``conv2``          ``sam.gcn.node`` / ``state``
``SAM.*`` (other)                      ``sam.*``
``out_CFM``, ``out_SAM``               ``head_cfm``, ``head_sam``
=====================================  =====================================================

**PraNet** (DengPingFan/PraNet, ``lib/PraNet_Res2Net.py``): :class:`endoked.seg.pranet.PraNet` keeps the
published module names (``resnet.*``, ``rfb2_1`` / ``rfb3_1`` / ``rfb4_1``, ``agg1``, ``ra4_conv1..5``,
``ra3_conv1..4``, ``ra2_conv1..4``), so its names are used as they are.

Both official test scripts feed 352 x 352 images normalised with the ImageNet mean/std and take the sigmoid of
the inference logits (Polyp-PVT: ``P1 + P2``; PraNet: its last map ``S2``), upsampled to the image's size;
:func:`to_checkpoint` records exactly that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from endoked.backbones.registry import IMAGENET_MEAN, IMAGENET_STD

IMAGE_SIZE = 352
"""The input size of both official test scripts."""

WRAPPERS: tuple[str, ...] = ("state_dict", "model")
"""Keys under which a training script may have nested the state dict."""

_DP_PREFIX = "module."

POLYP_PVT_SIGNATURE: tuple[str, ...] = (
    "backbone.patch_embed1.proj.weight",
    "backbone.block1.0.attn.q.weight",
    "Translayer2_0.conv.weight",
    "CFM.conv4.conv.weight",
    "SAM.conv_extend.weight",
    "out_CFM.weight",
    "out_SAM.weight",
)


def _prefix_pairs() -> list[tuple[str, str]]:
    """``(official prefix, our prefix)`` pairs; a name maps through the longest prefix it starts with."""
    pairs = [
        ("backbone.patch_embed1.", "encoder.stages.0.0."),
        ("backbone.block1.", "encoder.stages.0.1.blocks."),
        ("backbone.norm1.", "encoder.stages.0.1.norm."),
    ]
    for k in (2, 3, 4):
        pairs += [
            (f"backbone.patch_embed{k}.", f"encoder.stages.{k - 1}.0.downsample."),
            (f"backbone.block{k}.", f"encoder.stages.{k - 1}.0.blocks."),
            (f"backbone.norm{k}.", f"encoder.stages.{k - 1}.0.norm."),
        ]
    units = {
        "Translayer2_0": "reduce1",
        "Translayer2_1": "reduce2",
        "Translayer3_1": "reduce3",
        "Translayer4_1": "reduce4",
        **{f"CFM.conv_upsample{n}": f"cfm.up{n}" for n in range(1, 6)},
        "CFM.conv_concat2": "cfm.cat2",
        "CFM.conv_concat3": "cfm.cat3",
        "CFM.conv4": "cfm.out",
    }
    for official, ours in units.items():  # BasicConv2d(conv, bn) -> ConvBN(0: conv, 1: bn)
        pairs += [(f"{official}.conv.", f"{ours}.0."), (f"{official}.bn.", f"{ours}.1.")]
    pairs += [
        ("ca.", "cim.ca."),
        ("sa.conv1.", "cim.sa.conv."),
        ("SAM.gcn.conv1.", "sam.gcn.node."),
        ("SAM.gcn.conv2.", "sam.gcn.state."),
        ("SAM.", "sam."),
        ("out_CFM.", "head_cfm."),
        ("out_SAM.", "head_sam."),
    ]
    return pairs


_PAIRS = _prefix_pairs()
_OFFICIAL_DWCONV, _OUR_DWCONV = ".mlp.dwconv.dwconv.", ".mlp.dwconv."


def _translate(key: str, pairs: list[tuple[str, str]]) -> tuple[str, str] | None:
    """``(rest, new prefix)`` through the longest matching source prefix of ``pairs``, or None."""
    best = max((p for p in pairs if key.startswith(p[0])), key=lambda p: len(p[0]), default=None)
    return None if best is None else (key[len(best[0]) :], best[1])


def polyp_pvt_to_ours(key: str) -> str | None:
    """Our parameter name of an official Polyp-PVT name (None for a name outside the layout)."""
    found = _translate(key, _PAIRS)
    if found is None:
        return None
    rest, prefix = found
    out = prefix + rest
    return out.replace(_OFFICIAL_DWCONV, _OUR_DWCONV) if key.startswith("backbone.") else out


def polyp_pvt_to_official(key: str) -> str | None:
    """The official Polyp-PVT name of one of our parameter names (None for a name outside the layout)."""
    found = _translate(key, [(ours, official) for official, ours in _PAIRS])
    if found is None:
        return None
    rest, prefix = found
    out = prefix + rest
    return out.replace(_OUR_DWCONV, _OFFICIAL_DWCONV) if prefix.startswith("backbone.") else out


_PRANET_PREFIXES: tuple[str, ...] = (
    "resnet.",
    "rfb2_1.",
    "rfb3_1.",
    "rfb4_1.",
    "agg1.",
    *(f"ra4_conv{i}." for i in range(1, 6)),
    *(f"ra{level}_conv{i}." for level in (3, 2) for i in range(1, 5)),
)

PRANET_SIGNATURE: tuple[str, ...] = (
    "resnet.conv1.0.weight",
    "resnet.layer4.2.convs.2.weight",
    "rfb2_1.conv_res.conv.weight",
    "agg1.conv5.weight",
    "ra4_conv5.conv.weight",
    "ra2_conv4.conv.weight",
)


def _pranet_name(key: str) -> str | None:
    return key if key.startswith(_PRANET_PREFIXES) else None


@dataclass(frozen=True)
class Layout:
    """A published key layout.

    Attributes:
        name: what the release is called (``"Polyp-PVT"``, ``"PraNet"``).
        network: the network it builds here (``"polyp-pvt"``, ``"pranet"``).
        encoder: the backbone registry name of its encoder.
        decoder: the decoder arithmetic (Polyp-PVT networks), or None.
        signature: official names that tell the layout from others (listed when a file fits no layout).
        width_key: the official name of a tensor whose first dimension is the decoder width.
        from_official: our name of an official name (None outside the layout).
        to_official: the official name of one of ours (None outside the layout).
    """

    name: str
    network: str
    encoder: str
    decoder: str | None
    signature: tuple[str, ...]
    width_key: str
    from_official: Callable[[str], str | None]
    to_official: Callable[[str], str | None]


POLYP_PVT = Layout(
    name="Polyp-PVT",
    network="polyp-pvt",
    encoder="pvt_v2_b2",
    decoder="official",
    signature=POLYP_PVT_SIGNATURE,
    width_key="Translayer2_1.conv.weight",
    from_official=polyp_pvt_to_ours,
    to_official=polyp_pvt_to_official,
)
PRANET = Layout(
    name="PraNet",
    network="pranet",
    encoder="res2net50d",
    decoder=None,
    signature=PRANET_SIGNATURE,
    width_key="rfb2_1.conv_res.conv.weight",
    from_official=_pranet_name,
    to_official=_pranet_name,
)
LAYOUTS: tuple[Layout, ...] = (POLYP_PVT, PRANET)


def layout_named(name: object) -> Layout | None:
    """The layout a checkpoint's ``layout`` entry names (None: not a published layout)."""
    return next((lay for lay in LAYOUTS if lay.name == name), None)


def tensor_state(obj: Any) -> dict[str, torch.Tensor] | None:
    """The state dict inside a loaded ``.pth``: the dict itself when it maps names to tensors, else the one
    under ``state_dict`` or ``model``; DataParallel's ``module.`` prefixes removed. None when there is none."""
    if not isinstance(obj, dict):
        return None
    for wrapper in WRAPPERS:
        if isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        return None
    return {k[len(_DP_PREFIX) :] if k.startswith(_DP_PREFIX) else k: v for k, v in tensors.items()}


def detect(state: dict[str, torch.Tensor]) -> Layout | None:
    """The layout most names of ``state`` (more than half) belong to, or None."""
    for layout in LAYOUTS:
        if sum(layout.from_official(k) is not None for k in state) * 2 > len(state):
            return layout
    return None


def unexpected(layout: Layout, state: dict[str, torch.Tensor]) -> list[str]:
    """Names of ``state`` outside ``layout``."""
    return [k for k in state if layout.from_official(k) is None]


def to_checkpoint(layout: Layout, state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The checkpoint content (without ``format``) of an official state dict: our names, the network, its
    encoder and decoder width (and arithmetic), and the official inference input (352 x 352, ImageNet mean/std).
    Names outside the layout are left out here and listed by :func:`unexpected`; completeness and shapes are
    checked when the weights are loaded."""
    mapped = {ours: v for k, v in state.items() if (ours := layout.from_official(k)) is not None}
    width = state.get(layout.width_key)
    content: dict[str, Any] = {
        "state_dict": mapped,
        "network": layout.network,
        "encoder": layout.encoder,
        "channel": int(width.shape[0]) if width is not None else 32,
        "image_size": IMAGE_SIZE,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "layout": layout.name,
    }
    if layout.decoder is not None:
        content["decoder"] = layout.decoder
    return content
