"""Configuration of the mil stage."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from endoked.config_fields import EncoderSource


class MilConfig(EncoderSource):
    """Tunables of the mil stage: report labels (bag labels) to a polyp score per image."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Bag labels from report labels.
    positive_labels: list[str] = Field(["present"], description="Report polyp labels that make a positive bag.")
    negative_labels: list[str] = Field(
        ["absent"],
        description="Report polyp labels that make a negative bag; "
        "other labels (uncertain, failed extraction) are excluded (bag_label -1).",
    )
    # Encoder.
    image_size: int = Field(224, ge=32, description="Images are resized to image_size x image_size.")
    trainable_blocks: int = Field(
        0,
        ge=-1,
        description="0: frozen encoder, pooled features cached once; k > 0: the last k block stages "
        "(and the head conv) train, the frozen part's feature maps are cached; -1: the whole encoder trains "
        "on cached decoded images.",
    )
    pooling: Literal["avg", "max", "avgmax"] = Field(
        "max", description="Global pooling of the encoder's last feature maps; max keeps small polyps visible."
    )
    freeze_bn: bool = Field(True, description="Keep BatchNorm statistics of trainable encoder parts fixed.")
    feature_batch_size: int = Field(32, ge=1, description="Images per batch in the encoder pass.")
    chunk_size: int = Field(256, ge=1, description="Images per resumable chunk of the image scoring.")
    cache_dtype: Literal["float16", "float32"] = Field(
        "float16", description="Storage type of cached feature maps (pooled features are kept in float32)."
    )
    # Heads.
    hidden_dim: int = Field(256, ge=8, description="Width of the shared projection of encoder features.")
    attention_dim: int = Field(128, ge=8, description="Width of the attention/query layers of the teachers.")
    dropout: float = Field(0.25, ge=0.0, lt=1.0, description="Dropout after the shared projection.")
    # Training.
    max_images_per_bag: int = Field(
        32,
        ge=1,
        description="Training bags larger than this are subsampled "
        "(a new random subset each epoch); inference scores every image.",
    )
    epochs: int = Field(30, ge=1, description="Maximum training epochs.")
    patience: int = Field(8, ge=1, description="Stop after this many epochs without a better validation AUROC.")
    lr: float = Field(3e-4, gt=0, description="Learning rate of the MIL heads (Adam).")
    encoder_lr: float = Field(1e-4, gt=0, description="Learning rate of trainable encoder parts.")
    weight_decay: float = Field(1e-4, ge=0, description="Adam weight decay.")
    bags_per_step: int = Field(8, ge=1, description="Bags whose losses are summed per optimiser step.")
    val_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="Share of labelled exams held out (stratified, "
        "seeded) for validation; the checkpoint with the best validation bag AUROC is kept.",
    )
    student_weight: float = Field(1.0, ge=0, description="Weight of the student (instance) distillation loss.")
    student_positive_weight: float = Field(
        1.0,
        gt=0,
        description="Weight of instances of positive bags in the student loss, relative to "
        "instances of negative bags (weight 1).",
    )
    student_warmup_epochs: int = Field(
        1,
        ge=0,
        description="Epochs before the student loss is switched on, "
        "so that pseudo labels come from teachers that have learnt something.",
    )
    score_source: Literal["student", "dsmil_instance", "mean"] = Field(
        "student", description="Image score: the student's probability, the DSMIL instance classifier's, or their mean."
    )
    amp: bool = Field(True, description="fp16 autocast on CUDA (ignored elsewhere).")
    # Selection for the CAM stage.
    positive_threshold: float = Field(
        0.8, ge=0, le=1, description="Images of positive bags with a score at or above this are selected as positives."
    )
    negative_fraction: float = Field(
        0.3, ge=0, le=1, description="Lowest-scored fraction of the images of negative bags selected as negatives."
    )
    top_per_bag: int = Field(
        1,
        ge=0,
        description="Every positive bag also contributes its top-k scored images "
        "(at least this many), whatever their score: a report that finds a polyp says at "
        "least one of the exam's frames shows it, and a polyp the model scores low in "
        "absolute terms (small, unusual device) still tends to rank first in its exam.",
    )
    top_from_count: bool = Field(
        True,
        description="Raise k to the report's polyp count (extract's polyp_count), "
        "as every reported polyp is usually photographed.",
    )
    max_top_per_bag: int = Field(5, ge=1, description="Cap on k per bag (reports that count many polyps).")
    top_min_score: float = Field(
        0.001,
        ge=0,
        le=1,
        description="A top-k image still needs at least this score (drops frames the model is certain show no polyp).",
    )
