"""Tiny randomly initialised models built with the segmenter packages' own code and key layout, for tests."""

from __future__ import annotations

from typing import Any

import torch


def tiny_sam(checkpoint: Any = None) -> torch.nn.Module:
    """segment-anything's SAM (1024 input, real prompt encoder and mask decoder) with a one-block 32-channel ViT;
    the signature of a ``sam_model_registry`` builder."""
    from segment_anything.build_sam import _build_sam

    assert checkpoint is None
    return _build_sam(
        encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=2, encoder_global_attn_indexes=[0], checkpoint=None
    )
