"""Tiny randomly initialised models built with the segmenter packages' own code and key layout, for tests."""

from __future__ import annotations

from typing import Any

import torch

# Hydra overrides of a sam2 package config: Hiera trunk with 8 channels and 5 blocks (one per stage, two in the
# third with its global-attention block; a q-pooling block cannot be global) and the FPN neck matched to it.
# Every other module (prompt encoder, mask decoder, memory) keeps the config's layout.
TINY_SAM2_OVERRIDES = (
    "++model.image_encoder.trunk.embed_dim=8",
    "++model.image_encoder.trunk.num_heads=1",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
)


def tiny_sam(checkpoint: Any = None) -> torch.nn.Module:
    """segment-anything's SAM (1024 input, real prompt encoder and mask decoder) with a one-block 32-channel ViT;
    the signature of a ``sam_model_registry`` builder."""
    from segment_anything.build_sam import _build_sam

    assert checkpoint is None
    return _build_sam(
        encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=2, encoder_global_attn_indexes=[0], checkpoint=None
    )
