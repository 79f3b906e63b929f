"""Config field blocks shared by several stages' settings (pydantic base models, no heavy imports)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Runtime = Literal["auto", "torch", "onnxruntime"]
"""Inference runtime of a stage's model (see :mod:`endoked.onnxrt`): ``auto`` = ONNX Runtime on the CPU when
installed, torch otherwise."""


class EncoderSource(BaseModel):
    """Which encoder a stage builds and where its ImageNet weights come from (mil, cam, seg, biopsy)."""

    backbone: str = Field(
        "tf_efficientnet_lite0",
        description="Encoder name in the endoked.backbones registry: tf_efficientnet_lite0/1/2, mobilenetv2_100 "
        "(offline weight packages), pvt_v2_b2 (local weight file).",
    )
    pretrained: bool = Field(True, description="Start the encoder from ImageNet weights (false: random init).")
    weights: str | None = Field(
        None, description="Local weight file for the encoder; default: the registry's offline weight packages."
    )
    allow_download: bool = Field(False, description="Allow downloading encoder weights when none is local.")
