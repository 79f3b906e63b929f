"""Configuration of the cam stage."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, PositiveFloat

from endoked.boxes import BoxFilterConfig
from endoked.config_fields import EncoderSource, Runtime


class CamConfig(EncoderSource):
    """Tunables of the cam stage: the CAM classifier, the activation maps and the box filters."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Classifier.
    image_size: int = Field(352, ge=64, description="Side of the square classifier input (images are stretched).")
    levels: list[int] = Field(
        [4],
        min_length=1,
        description="Encoder levels the head reads (0 = stride 2 … 4 = stride 32 for EfficientNet); the CAM has "
        "the stride of the finest one.",
    )
    head: Literal["linear", "mlp"] = Field(
        "mlp",
        description="Dense head: one 1×1 conv, or 1×1 conv → ReLU → 1×1 (the default: higher pseudo-mask Dice or "
        "coverage on every archive design, docs/BENCHMARKS.md).",
    )
    hidden: int = Field(64, ge=1, description="Width of the mlp head.")
    pool: Literal["gap", "lse", "max", "topk"] = Field(
        "gap",
        description="Pooling of the location logits into the image logit (gap = classic CAM; lse/max/topk "
        "make polyp-free images push every location negative).",
    )
    lse_r: float = Field(5.0, gt=0, description="Sharpness of log-sum-exp pooling.")
    topk: float = Field(0.1, gt=0, le=1, description="Fraction of locations averaged by topk pooling.")
    epochs: int = Field(15, ge=1, description="Epochs over the cached features.")
    lr: float = Field(5e-3, gt=0, description="AdamW learning rate of the head (cosine decay).")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")
    batch_size: int = Field(64, ge=1, description="Cached samples per training step.")
    feature_dropout: float = Field(0.1, ge=0, lt=1, description="Channel dropout on the features while training.")
    train_flip: bool = Field(True, description="Also train on horizontally flipped images.")
    train_jitter: int = Field(
        0,
        ge=0,
        le=8,
        description="Extra training views per image with random brightness, contrast and gamma, so that the head "
        "cannot tell the classes apart by a frame's overall exposure instead of the polyp (measured on the "
        "heldout design: no gain, docs/BENCHMARKS.md; off).",
    )
    max_train_per_class: int | None = Field(
        None, ge=1, description="Cap on training images per class (random subset); None = all selected images."
    )
    checkpoint: str | None = Field(None, description="A CAM classifier checkpoint to use instead of training one.")
    encode_batch_size: int = Field(8, ge=1, description="Images per encoder call.")
    # Activation maps.
    method: Literal["cam", "gradcam", "gradcampp", "layercam"] = Field(
        "cam", description="Activation map: the head's location logits (cam) or a gradient method."
    )
    cam_layers: list[int] | None = Field(
        None, description="Encoder levels for the gradient methods; default: the head's levels."
    )
    scales: list[PositiveFloat] = Field(
        [0.75, 1.0, 1.5, 2.0],
        min_length=1,
        description="Test-time scales of image_size (EndoKED: 0.5–1.75); maps are averaged at the resolution of "
        "the largest scale, so larger scales give finer maps.",
    )
    flip: bool = Field(True, description="Add horizontally flipped views at test time.")
    runtime: Runtime = Field(
        "auto",
        description="Inference runtime of the classifier's maps (method cam): auto = ONNX Runtime when installed "
        "and on the CPU (several times faster there, same maps to ~1e-4), torch otherwise (endoked.onnxrt).",
    )
    min_class_prob: float = Field(
        0.5, ge=0, le=1, description="Drop an image (reason low_class_prob) whose classifier probability is lower."
    )
    save_cams: bool = Field(True, description="Keep the CAMs (uint8) for prompt_seg's box refinement and overlays.")
    # Boxes.
    boxes: BoxFilterConfig = Field(default_factory=BoxFilterConfig, description="The box filter (EndoKED's).")
    # Run.
    chunk_size: int = Field(64, ge=1, description="Images per resumable chunk.")
