"""Image encoders by timm name, with offline pretrained weights (see :mod:`endoked.backbones.weights`)."""

from endoked.backbones.factory import create_backbone, normalize_images
from endoked.backbones.registry import (
    BackboneInfo,
    WeightPackage,
    backbone_info,
    list_backbones,
    register_backbone,
)
from endoked.backbones.weights import WeightsSource, install_hint, resolve_weights

__all__ = [
    "BackboneInfo",
    "WeightPackage",
    "WeightsSource",
    "backbone_info",
    "create_backbone",
    "install_hint",
    "list_backbones",
    "normalize_images",
    "register_backbone",
    "resolve_weights",
]
